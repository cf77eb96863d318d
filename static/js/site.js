// Small progressive enhancements; the site works without this file.
"use strict";
document.documentElement.classList.add("js");

// "/" focuses the search box, as on many sites, unless the reader is typing somewhere already.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  const search = document.getElementById("q");
  if (search) {
    event.preventDefault();
    search.focus();
    search.select();
  }
});

// A link in the list (a chip, a tag, "Clear the search") changes the address without the search
// box, which sits outside the swapped list: keep the box saying what the address says, unless the
// reader is typing in it (then the address follows the box). htmx spells its event names with the
// configured metaCharacter ("-", see base.html), so htmx:after:history:update arrives as this.
document.addEventListener("htmx-after-history-update", () => {
  const search = document.getElementById("q");
  if (search && document.activeElement !== search) {
    search.value = new URLSearchParams(window.location.search).get("q") ?? "";
  }
});
