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

// The list's own links (chips, tags, pages) set filters the search box does not show: the form
// gets them from hidden fields in the list, so only once the link's answer is swapped in. The
// link's and the search's requests share one queue on the list (hx-sync, _macros.html), so the
// latest replaces any on its way; what is left is that the latest carries both. A link's request
// carries the words typed but not searched yet (from the first page: another query's page 2
// means nothing), and a search sent while the form's fields lack the current filters (a link's
// answer awaited, or an error answer that replaced the list and its fields) carries them.
// Back or Forward restores another page whole: no request for the old page's list may land
// after it, so those on their way are aborted and new ones refused until it is in.
// htmx:config:request (htmx-config-request here) is where a request may still change or be
// cancelled, and htmx:before:request where htmx sends it instead of dropping it.
let listLink = null; // a link's request htmx sent, until it ends
let carriedBefore = null; // what `carried` was before it: a link that gets no answer changes nothing
let carried = null; // the filters searches must carry, or null when the form's fields have them
let restoring = false; // a page restored from history is on its way
const filtersOf = (action) =>
  [...new URL(action, window.location.href).searchParams].filter(([name]) => name !== "q" && name !== "page");
const toTheList = (ctx, search) => ctx.target?.id === search.getAttribute("aria-controls");
const fromListLink = (ctx, search) => ctx.sourceElement instanceof HTMLAnchorElement && toTheList(ctx, search);
document.addEventListener("htmx-config-request", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  if (!search) return;
  const fromForm = ctx.sourceElement === search.form;
  const fromLink = fromListLink(ctx, search);
  if (restoring && (fromForm || fromLink)) {
    event.preventDefault();
  } else if (fromForm && ctx.request.body instanceof FormData) {
    if (carried) {
      for (const name of [...ctx.request.body.keys()]) if (name !== "q") ctx.request.body.delete(name);
      for (const [name, value] of carried) ctx.request.body.append(name, value);
    }
    // An emptied box is no search: the address becomes / (or /?category=…), not /?q=.
    if (!String(ctx.request.body.get("q") ?? "").trim()) ctx.request.body.delete("q");
    listLink = null; // this search replaces the link's request and carries its filters
  } else if (fromLink && search.value !== addressQuery()) {
    const address = new URL(ctx.request.action, window.location.href);
    const params = new URLSearchParams(search.value ? { q: search.value } : {}); // q first, as links
    for (const [name, value] of filtersOf(ctx.request.action)) params.append(name, value);
    ctx.request.action = `${address.pathname}?${params}`;
  }
});
document.addEventListener("htmx-before-request", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  if (!search || !fromListLink(ctx, search)) return;
  listLink = ctx;
  carriedBefore = carried;
  carried = filtersOf(ctx.request.action);
});
document.addEventListener("htmx-finally-request", (event) => {
  const { ctx } = event.detail;
  if (ctx.request?.headers?.["HX-History-Restore-Request"] === "true") restoring = false;
  if (ctx !== listLink) return;
  listLink = null;
  if (ctx.status !== "swapped") carried = carriedBefore; // no answer: nothing changed
});
document.addEventListener("htmx-after-swap", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  const failed = search && toTheList(ctx, search) && ctx.response?.status >= 400;
  carried = failed ? filtersOf(ctx.request.action) : null; // an answer's own fields, or none
  // A link the new list no longer has ("Clear the search and filters") took the focus with it,
  // which left a keyboard or screen reader at the top of the page: the search box has it now.
  const lost = document.activeElement === null || document.activeElement === document.body;
  if (search && lost && toTheList(ctx, search)) search.focus();
});
document.addEventListener("htmx-before-history-restore", () => {
  listLink?.request.abort();
  document.getElementById("q")?.form?.dispatchEvent(new CustomEvent("htmx:abort"));
  listLink = null;
  carried = null;
  restoring = true;
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
