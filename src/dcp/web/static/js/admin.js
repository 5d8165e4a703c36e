// Admin pages: a form marked data-submit-once sends once, however many times its button is pressed
// (the server would also answer a repeated credit as the same credit; this spares the second request).
"use strict";

function submitFormsOnce() {
  for (const form of document.querySelectorAll("form[data-submit-once]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "yes";
      for (const button of form.querySelectorAll("button[type=submit]")) button.setAttribute("aria-disabled", "true");
    });
  }
}

document.addEventListener("DOMContentLoaded", submitFormsOnce);
