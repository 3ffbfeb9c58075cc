// Payment method page: card (Card Element + confirmCardSetup) or SEPA Direct Debit (IBAN Element +
// confirmSepaDebitSetup) through a Stripe SetupIntent. Card numbers and IBANs go from the browser to Stripe only;
// our server gets the SetupIntent id and checks it with Stripe. Works with real Stripe.js and with localstripe's
// fake Stripe.js (which has a card element only: with it, data-emulated="true" and the IBAN is a plain field
// whose value goes to the emulator, never to us).
(function () {
  "use strict";

  const root = document.getElementById("payment-setup");
  if (!root) {
    return;
  }
  const config = root.dataset;
  const emulated = config.emulated === "true";
  const confirmForm = document.getElementById("confirm-form");
  const csrfToken = confirmForm.querySelector("input[name=csrf_token]").value;

  if (typeof window.Stripe !== "function") {
    root.querySelectorAll("[data-method-choice]").forEach((button) => { button.disabled = true; });
    const notice = document.createElement("p");
    notice.className = "error";
    notice.setAttribute("role", "alert");
    notice.textContent = config.msgNoStripe;
    root.appendChild(notice);
    return;
  }

  const stripe = window.Stripe(config.publishableKey);
  const mounted = {};

  function elementsGroup() {
    // One group per element: localstripe's fake allows a single element per group; real Stripe does not mind.
    return emulated ? stripe.elements() : stripe.elements({ locale: config.locale || "auto" });
  }

  function mount(kind) {
    if (mounted[kind] !== undefined) {
      return;
    }
    if (kind === "card") {
      mounted.card = elementsGroup().create("card", { hidePostalCode: true });
      mounted.card.mount("#card-element");
    } else if (emulated) {
      mounted.sepa_debit = null; // plain #iban-input
    } else {
      mounted.sepa_debit = elementsGroup().create("iban", { supportedCountries: ["SEPA"], placeholderCountry: "BE" });
      mounted.sepa_debit.mount("#iban-element");
    }
  }

  function show(kind) {
    root.querySelectorAll("[data-method-form]").forEach((form) => {
      form.hidden = form.dataset.methodForm !== kind;
    });
    root.querySelectorAll("[data-method-choice]").forEach((button) => {
      const active = button.dataset.methodChoice === kind;
      button.setAttribute("aria-expanded", active ? "true" : "false");
      button.classList.toggle("button--primary", active);
      button.classList.toggle("button--ghost", !active);
    });
    mount(kind);
  }

  async function createSetupIntent(methodType) {
    const response = await fetch(config.setupIntentUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ method_type: methodType }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.client_secret) {
      throw new Error(body.error || config.msgGeneric);
    }
    return body;
  }

  function confirmWithStripe(kind, form, clientSecret) {
    if (kind === "card") {
      return stripe.confirmCardSetup(clientSecret, {
        payment_method: {
          card: mounted.card,
          billing_details: { name: form.querySelector("#card-holder").value.trim() },
        },
      });
    }
    const sepaDebit = emulated
      ? { iban: form.querySelector("#iban-input").value.replace(/\s+/g, "").toUpperCase() }
      : mounted.sepa_debit;
    return stripe.confirmSepaDebitSetup(clientSecret, {
      payment_method: {
        sepa_debit: sepaDebit,
        // Stripe requires the account holder's name and email for a SEPA mandate.
        billing_details: { name: form.querySelector("#sepa-holder").value.trim(), email: config.billingEmail },
      },
    });
  }

  async function submit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const kind = form.dataset.methodForm;
    const errorNode = form.querySelector("[data-error]");
    const button = form.querySelector("button[type=submit]");
    const label = button.textContent;
    errorNode.textContent = "";
    button.disabled = true;
    button.textContent = config.msgBusy;
    try {
      const intent = await createSetupIntent(kind);
      const result = await confirmWithStripe(kind, form, intent.client_secret);
      if (result.error) {
        throw new Error(result.error.message || config.msgGeneric);
      }
      // The server checks this id with Stripe before storing anything.
      confirmForm.querySelector("input[name=setup_intent]").value = result.setupIntent.id;
      confirmForm.submit();
    } catch (error) {
      errorNode.textContent = (error && error.message) || config.msgGeneric;
      button.disabled = false;
      button.textContent = label;
    }
  }

  root.querySelectorAll("[data-method-choice]").forEach((button) => {
    button.addEventListener("click", () => show(button.dataset.methodChoice));
  });
  root.querySelectorAll("[data-method-form]").forEach((form) => {
    form.addEventListener("submit", submit);
  });
})();
