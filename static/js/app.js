// Small progressive enhancements; every page works without JavaScript.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit")) {
    target.form.submit();
  }
});

// The phone menu (templates/base.html). Without JavaScript its toggle is a link to the menu, which CSS :target
// opens; here it becomes a button that opens and closes the menu in place and tells screen readers
// (aria-expanded); Escape closes it and gives the focus back to the button.
document.querySelectorAll("[data-menu-toggle]").forEach((toggle) => {
  const menu = document.getElementById(toggle.getAttribute("aria-controls"));
  if (!menu) return;
  menu.setAttribute("data-enhanced", "");
  toggle.setAttribute("role", "button");
  const setOpen = (open) => {
    toggle.setAttribute("aria-expanded", String(open));
    menu.classList.toggle("is-open", open);
  };
  setOpen(window.location.hash === "#" + menu.id);
  toggle.addEventListener("click", (event) => {
    event.preventDefault();
    setOpen(toggle.getAttribute("aria-expanded") !== "true");
  });
  toggle.addEventListener("keydown", (event) => {
    if (event.key === " ") {
      event.preventDefault();
      toggle.click();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      setOpen(false);
      toggle.focus();
    }
  });
});
