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
// in the list), and the search and the chip's request race: whichever answer came last won, and
// one without the chip dropped it. So while a link's answer is awaited, the link's request
// carries the words not searched yet (from the first page: another query's page 2 means
// nothing), a search already on its way is aborted (it asked for the old filters), and every
// search sent takes the link's filters and replaces its request, until an answer is swapped in.
// htmx:config:request (htmx-config-request here) is where a request may still change, and
// htmx:before:request where it is sent, not dropped by hx-sync.
let listLink = null; // a link's request on its way
let linkFilters = null; // its filters, until an answer is swapped into the page
const fromListLink = (ctx, search) =>
  ctx.sourceElement instanceof HTMLAnchorElement && ctx.target?.id === search.getAttribute("aria-controls");
document.addEventListener("htmx-config-request", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  if (!search) return;
  if (ctx.sourceElement === search.form && ctx.request.body instanceof FormData) {
    if (linkFilters) {
      for (const name of [...ctx.request.body.keys()]) if (name !== "q") ctx.request.body.delete(name);
      for (const [name, value] of linkFilters) ctx.request.body.append(name, value);
    }
    listLink?.request.abort();
    listLink = null;
  } else if (fromListLink(ctx, search) && search.value !== addressQuery()) {
    const address = new URL(ctx.request.action, window.location.href);
    const params = new URLSearchParams(search.value ? { q: search.value } : {}); // q first, as links
    for (const [name, value] of address.searchParams) if (name !== "q" && name !== "page") params.append(name, value);
    ctx.request.action = `${address.pathname}?${params}`;
  }
});
document.addEventListener("htmx-before-request", (event) => {
  const search = document.getElementById("q");
  const { ctx } = event.detail;
  if (!search || !fromListLink(ctx, search)) return;
  search.form.dispatchEvent(new CustomEvent("htmx:abort")); // htmx listens for this name as is
  listLink?.request.abort(); // an earlier link's answer is stale too
  listLink = ctx;
  const filters = new URL(ctx.request.action, window.location.href).searchParams;
  linkFilters = [...filters].filter(([name]) => name !== "q" && name !== "page");
});
document.addEventListener("htmx-finally-request", (event) => {
  if (event.detail.ctx !== listLink) return;
  listLink = null;
  if (event.detail.ctx.status !== "swapped") linkFilters = null; // it failed: nothing to carry
});
// Any answer swapped in now (the link's, a search that carried its filters, a page restored
// from history) has put its own filters in the form.
document.addEventListener("htmx-after-swap", () => {
  linkFilters = null;
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
