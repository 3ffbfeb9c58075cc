// "Pay now" on the balance page. Posts to our server, which charges the saved payment method. When the bank
// asks for 3-D Secure, the answer carries the PaymentIntent's client secret: Stripe.js shows the bank's
// challenge, then we post again with the PaymentIntent id and the server checks the result with Stripe.
// Without JavaScript the plain form post still works for payments that need no authentication.
(function () {
  "use strict";

  const root = document.getElementById("pay-now");
  const form = document.getElementById("pay-form");
  if (!root || !form) {
    return;
  }
  const config = root.dataset;
  const csrfToken = form.querySelector("input[name=csrf_token]").value;
  const errorNode = form.querySelector("[data-error]");
  const button = form.querySelector("button[type=submit]");

  async function post(body) {
    const response = await fetch(config.payUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify(body),
    });
    return response.json().catch(() => ({ status: "error", message: config.msgGeneric }));
  }

  async function pay(body) {
    let answer = await post(body);
    // Each invoice may need its own confirmation; stop if the same one is asked twice (driver cancelled).
    const confirmed = new Set();
    while (answer.status === "requires_action" && answer.client_secret && !confirmed.has(answer.payment_intent)) {
      if (typeof window.Stripe !== "function") {
        throw new Error(answer.message || config.msgGeneric);
      }
      confirmed.add(answer.payment_intent);
      const stripe = window.Stripe(config.publishableKey);
      const outcome = await stripe.confirmCardPayment(answer.client_secret);
      if (outcome.error && !outcome.paymentIntent) {
        // Tell the server anyway: it reads the PaymentIntent's real state from Stripe.
        answer = await post({ payment_intent: answer.payment_intent });
        if (answer.status === "requires_action") {
          throw new Error(outcome.error.message || config.msgGeneric);
        }
        continue;
      }
      answer = await post({ payment_intent: answer.payment_intent });
    }
    return answer;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const label = button.textContent;
    errorNode.textContent = "";
    button.disabled = true;
    button.textContent = config.msgBusy;
    try {
      const answer = await pay({});
      if (answer.status === "failed" || answer.status === "error" || answer.status === "requires_action") {
        throw new Error(answer.message || config.msgGeneric);
      }
      window.location.assign(answer.redirect || window.location.href);
    } catch (error) {
      errorNode.textContent = (error && error.message) || config.msgGeneric;
      button.disabled = false;
      button.textContent = label;
    }
  });
})();
