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
// reader is typing in it (then the address follows the box), or typed words the live search has
// not sent yet (it waits 250 ms): those then search within the chip's filter instead of being
// wiped. htmx spells its event names with the configured metaCharacter ("-", see base.html), so
// htmx:before:history:update and htmx:after:history:update arrive as these.
const addressQuery = () => new URLSearchParams(window.location.search).get("q") ?? "";
let unsent = false;
document.addEventListener("htmx-before-history-update", () => {
  const search = document.getElementById("q");
  unsent = search !== null && search.value !== addressQuery();
});
document.addEventListener("htmx-after-history-update", () => {
  const search = document.getElementById("q");
  if (search && document.activeElement !== search && !unsent) search.value = addressQuery();
});

// The chip's filter reaches the search form only with the chip's answer (its hidden fields are
// in the list), and the two requests race: a search sent before that answer, whose own answer
// came last, dropped the chip. So a link's request carries the words not sent yet, and a search
// sent while a link's request is on its way takes that link's filters and replaces it: the
// answer that comes last always has both. (htmx:config:request, as htmx-config-request here, is
// where a request's fields may still change.)
let listLink = null; // the request of a link in the list, until it ends
document.addEventListener("htmx-config-request", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  const source = ctx.sourceElement;
  if (!search || !(ctx.request.body instanceof FormData)) return;
  if (source === search.form && listLink) {
    const filters = new URL(listLink.request.action, window.location.href).searchParams;
    for (const name of [...ctx.request.body.keys()]) if (name !== "q") ctx.request.body.delete(name);
    for (const [name, value] of filters) if (name !== "q" && name !== "page") ctx.request.body.append(name, value);
    listLink.request.abort();
    listLink = null;
  } else if (source instanceof HTMLAnchorElement && ctx.target?.id === search.getAttribute("aria-controls")) {
    if (search.value !== addressQuery()) ctx.request.body.set("q", search.value);
    listLink = ctx;
  }
});
document.addEventListener("htmx-finally-request", (event) => {
  if (event.detail.ctx === listLink) listLink = null;
});

// Signing out in this tab drops the words the editor kept in it (editor.js): the next person
// at a shared computer is never offered them.
document.addEventListener("submit", (event) => {
  if (!(event.target instanceof HTMLFormElement) || !event.target.matches("[data-sign-out]")) return;
  try {
    for (const key of Object.keys(sessionStorage)) {
      if (key.startsWith("blog:unsaved:")) sessionStorage.removeItem(key);
    }
  } catch { /* storage off */ }
});
