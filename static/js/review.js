// The admin pages' small helpers: ask once before Approve and Revoke, say the admin's time zone
// when scheduling, copy a new token or invitation link. Without JavaScript every form still works
// (the buttons submit at once, and a schedule is read as UTC, which the label then says).
"use strict";

// A submit button with data-confirm asks in the page's <dialog> (review/_confirm.html) first.
document.addEventListener("submit", (event) => {
  const button = event.submitter;
  const dialog = document.getElementById("confirm-dialog");
  if (!(button instanceof HTMLElement) || !button.dataset.confirm || !dialog) return;
  const form = event.target;
  if (form.dataset.confirmed === "yes") {
    delete form.dataset.confirmed;
    return;
  }
  event.preventDefault();
  document.getElementById("confirm-text").textContent = button.dataset.confirm;
  document.getElementById("confirm-yes").textContent = button.textContent.trim() || "Yes";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "yes") {
      button.focus();
      return;
    }
    form.dataset.confirmed = "yes";
    form.requestSubmit(button);
  }, { once: true });
  dialog.showModal();
});

// Scheduling: the datetime-local field is read in the admin's own zone, named beside it.
const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
if (zone) {
  for (const field of document.querySelectorAll(".zone-field")) field.value = zone;
  for (const name of document.querySelectorAll(".zone-name")) name.textContent = zone;
}

// Copy buttons stay hidden without JavaScript (the text is selectable anyway).
for (const button of document.querySelectorAll(".copy-button[data-copy]")) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const source = document.getElementById(button.dataset.copy);
    const text = source instanceof HTMLInputElement ? source.value : source.textContent.trim();
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      if (source instanceof HTMLInputElement) source.select();
      button.textContent = "Press Ctrl+C to copy";
    }
    setTimeout(() => { button.textContent = label; }, 2000);
  });
}
