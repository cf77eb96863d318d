// The editor's small helpers: an unsaved-changes warning, a slug from the title, tag suggestions.
// Loaded on studio pages only; the editor works without it (no warning, no suggestions).
"use strict";

(() => {
  const form = document.querySelector("form[data-dirty-guard]");
  if (!form) return;

  // Warn before leaving with changes that neither a save nor an autosave has kept.
  let dirty = false;
  form.addEventListener("input", () => { dirty = true; });
  form.addEventListener("submit", () => { dirty = false; });
  // htmx:after:swap, spelled with the metaCharacter "-" that base.html configures. htmx 4 fires
  // it on the element that sent the request: the form for an autosave (the preview's is the body).
  document.addEventListener("htmx-after-swap", (event) => {
    const status = document.getElementById("autosave-status");
    if (event.target === form && status?.querySelector("[data-saved=yes]")) dirty = false;
  });
  window.addEventListener("beforeunload", (event) => {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // Fill the slug from the title until the author types a slug of their own.
  const slug = form.querySelector("[data-slug-from]");
  const title = form.querySelector("#title");
  const slugify = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 190);
  if (slug && title) {
    let own = slug.value !== "" && slug.value !== slugify(title.value);
    slug.addEventListener("input", () => { own = slug.value !== ""; });
    title.addEventListener("input", () => { if (!own) slug.value = slugify(title.value); });
  }

  // Suggest existing tags for the word being typed after the last comma.
  const tags = form.querySelector("[data-tag-suggest]");
  const list = document.getElementById("tag-options");
  if (tags && list) {
    const known = JSON.parse(list.dataset.tags || "[]");
    tags.addEventListener("input", () => {
      const parts = tags.value.split(",");
      const typing = parts.pop().trim().toLowerCase();
      const before = parts.map((p) => p.trim()).filter(Boolean);
      const prefix = before.length ? before.join(", ") + ", " : "";
      list.replaceChildren(...known
        .filter((name) => name.toLowerCase().startsWith(typing) && !before.includes(name))
        .slice(0, 12)
        .map((name) => new Option(prefix + name)));
    });
  }
})();
