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
