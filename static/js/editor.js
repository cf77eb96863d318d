// The editor's helpers: save times in the reader's own time zone, an unsaved-changes warning,
// unsaved words kept in the tab until a save has them, the switch from a new article to its
// first autosave, a warning lock on live articles, Tab in code blocks, a preview that follows
// the cursor, Edit/Preview tabs on narrow screens, a slug from the title, tag suggestions. Loaded on studio pages only; the editor works without it.
"use strict";

(() => {
  // Times are sent as UTC in <time datetime>; show them as the reader's clock says.
  const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const localTimes = (root) => {
    for (const element of root.querySelectorAll("time[data-local-time]")) {
      const when = new Date(element.getAttribute("datetime"));
      if (Number.isNaN(when.getTime())) continue;
      const today = when.toDateString() === new Date().toDateString();
      element.textContent = (today ? timeFormat : dateTimeFormat).format(when);
      element.title = when.toISOString();
    }
  };
  localTimes(document);

  const form = document.querySelector("form[data-dirty-guard]");
  if (!form) return;
  const status = document.getElementById("autosave-status");
  const body = form.querySelector("#body");
  const previewPanel = document.getElementById("preview-panel");
  const layout = form.closest(".editor-layout");

  // Keep the words typed in this tab (sessionStorage) until a save or an autosave has them: a
  // sign-in that ended, a refused save followed by a reload, or a crash must not take them.
  // Per tab and per account, and signing out in the tab drops them (site.js), so a shared
  // computer's next person is never offered them. Kept with the revision the words were
  // written on and their editing session, so putting them back meets the same conflict check
  // as the save that did not get through (someone may have saved a newer text since).
  const TYPED = "input[name]:not([type=hidden]):not([type=checkbox]):not([type=file]), textarea[name]";
  const KEPT_PREFIX = "blog:unsaved:";
  const hidden = (name) => form.querySelector(`input[type=hidden][name=${name}]`);
  const typed = () => Object.fromEntries([...form.querySelectorAll(TYPED)].map((f) => [f.name, f.value]));
  const keyFor = (action) => `${KEPT_PREFIX}${form.dataset.user}:${action}`;
  const keptKey = () => keyFor(form.getAttribute("action"));
  const NEW_ARTICLE = form.dataset.newArticle; // where a new article's words are kept until it has an address
  // Compare as the server stores them: trimmed, a tag list re-joined, line ends normalised.
  const stored = (fields) => Object.fromEntries(Object.entries(fields).map(([name, value]) => {
    let text = value.replace(/\r\n/g, "\n");
    if (name === "tags") text = text.split(",").map((t) => t.trim()).filter(Boolean).join(", ");
    else if (name === "category") text = text.split(/\s+/).filter(Boolean).join(" ");
    else if (name !== "body") text = text.trim();
    return [name, text];
  }));
  const sameAsPage = (fields) => {
    const now = stored(typed());
    return Object.entries(stored(fields)).every(([name, value]) => (now[name] ?? value) === value);
  };
  const readKept = (key) => {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch { return null; }
  };
  let keptUnder = null; // the key the words were last kept under
  let keepTimer = null;
  const keepNow = () => {
    clearTimeout(keepTimer);
    try {
      keptUnder = keptKey();
      sessionStorage.setItem(keptUnder, JSON.stringify({
        at: Date.now(),
        base: hidden("base_revision")?.value,
        session: hidden("editing_session")?.value,
        fields: typed(),
      }));
    } catch { /* storage full or off: the warning on leaving still stands */ }
  };
  const keep = () => {
    clearTimeout(keepTimer);
    keepTimer = setTimeout(keepNow, 300);
  };
  const forget = () => {
    clearTimeout(keepTimer);
    try {
      for (const key of new Set([keptUnder, keptKey()])) if (key) sessionStorage.removeItem(key);
    } catch { /* storage off */ }
  };

  // Warn before leaving with changes that neither a save nor an autosave has kept.
  let dirty = false;
  let edits = 0; // edits so far, to tell whether the text changed while an autosave was out
  let editsSent = 0;
  form.addEventListener("input", () => { dirty = true; edits += 1; keep(); });
  form.addEventListener("submit", () => { dirty = false; }); // kept until the next page has it
  window.addEventListener("beforeunload", (event) => {
    if (!dirty) return;
    event.preventDefault();
    event.returnValue = "";
  });
  document.addEventListener("htmx-before-request", (event) => {
    if (event.target === form) editsSent = edits;
  });

  // htmx:after:swap, spelled with the metaCharacter "-" that base.html configures. htmx 4 fires
  // it on the element that sent the request: the form for an autosave, #preview for the preview.
  document.addEventListener("htmx-after-swap", (event) => {
    if (event.target === form) {
      localTimes(status);
      const saved = status.querySelector("[data-saved=yes]");
      if (saved && edits === editsSent) {
        dirty = false;
        forget();
      }
      if (saved?.dataset.autosaveUrl) switchToCreated(saved.dataset);
    } else if (event.target.id === "preview") {
      follow();
    }
  });

  // A preview refused by its rate limit (a long burst of typing) keeps the last one instead of
  // the error, and asks again once the limit allows (Retry-After), typing or not.
  let previewRetry = null;
  document.addEventListener("htmx-before-swap", (event) => {
    const response = event.detail?.ctx?.response;
    if (event.target.id !== "preview" || response?.status !== 429) return;
    event.preventDefault();
    const seconds = Number(response.headers?.get("Retry-After")) || 5;
    clearTimeout(previewRetry);
    previewRetry = setTimeout(() => event.target.dispatchEvent(new Event("retry-preview")),
      Math.min(seconds, 60) * 1000);
  });

  // Words this tab kept but the server does not have: offer them back, never unasked.
  const offerKept = () => {
    if (NEW_ARTICLE && keptKey() !== keyFor(NEW_ARTICLE)) {
      // A new article saved with its Save button before any autosave: its words were kept as
      // a new article's, and this page is that article now.
      const fresh = readKept(keyFor(NEW_ARTICLE));
      if (fresh?.fields && sameAsPage(fresh.fields)) {
        try { sessionStorage.removeItem(keyFor(NEW_ARTICLE)); } catch { /* storage off */ }
      }
    }
    const kept = readKept(keptKey());
    if (!kept?.fields) return;
    if (sameAsPage(kept.fields)) {
      forget(); // the page already shows them: the save got through
      return;
    }
    const notice = document.getElementById("kept-text");
    if (!notice) return;
    notice.querySelector("[data-kept-at]").textContent = dateTimeFormat.format(new Date(kept.at));
    notice.hidden = false;
    notice.querySelector("[data-kept-restore]").addEventListener("click", () => {
      document.querySelector("[data-live-lock] [data-unlock]")?.click();
      for (const field of form.querySelectorAll(TYPED)) {
        if (field.name in kept.fields) field.value = kept.fields[field.name];
      }
      // Written on that revision in that session: a newer save by anyone else is a conflict.
      if (kept.base && hidden("base_revision")) hidden("base_revision").value = kept.base;
      if (kept.session && hidden("editing_session")) hidden("editing_session").value = kept.session;
      notice.hidden = true;
      body.focus();
      body.dispatchEvent(new Event("input", { bubbles: true })); // autosave and preview follow
    });
    notice.querySelector("[data-kept-discard]").addEventListener("click", () => {
      forget();
      notice.hidden = true;
    });
  };

  // The first autosave of a new article created it: go on editing that article in place.
  const switchToCreated = (created) => {
    forget(); // the new article's words move to its own address (kept again below if unsaved)
    form.setAttribute("data-hx-post", created.autosaveUrl);
    form.setAttribute("action", created.saveUrl); // form.action would name the "action" buttons
    if (dirty) keepNow();
    document.querySelector(".page-head h1").textContent = "Edit article";
    document.title = document.title.replace(/^New article/, "Edit article");
    for (const element of document.querySelectorAll("[data-after-create]")) element.hidden = false;
    const history = document.querySelector("[data-history-link]");
    if (history) history.href = created.historyUrl;
    const checks = document.getElementById("checks");
    const panel = document.getElementById("checks-panel");
    if (checks && panel && window.htmx) {
      checks.setAttribute("data-hx-get", created.checksUrl);
      checks.setAttribute("data-hx-trigger", "load, saved from:body");
      checks.setAttribute("data-hx-swap", "innerHTML");
      panel.hidden = false;
      window.htmx.process(checks);
    }
  };

  // A live article: nothing changes before the author has read what the first change does.
  const lock = document.querySelector("[data-live-lock]");
  if (lock) {
    const fields = form.querySelectorAll("[data-lockable]");
    const unlock = lock.querySelector("[data-unlock]");
    for (const field of fields) field.readOnly = true;
    const checkbox = form.querySelector("input[name=ai_generated]");
    if (checkbox) checkbox.disabled = true;
    unlock.hidden = false;
    unlock.addEventListener("click", () => {
      for (const field of fields) field.readOnly = false;
      if (checkbox) checkbox.disabled = false;
      lock.querySelector("p").textContent = "Editing a new draft: readers keep seeing the "
        + "published version until a reviewer approves this one.";
      unlock.remove();
      body.focus();
    });
  }

  // Tab indents inside a ``` (or ~~~) code block; elsewhere it moves focus as usual, and Esc
  // first lets it leave the text box from inside a code block too.
  const FENCE = /^\s{0,3}(```|~~~)/;
  const INDENT = "    ";
  const inCodeBlock = (text, position) => {
    const lines = text.slice(0, position).split("\n");
    lines.pop(); // the cursor's own line: a fence line itself is not inside the block
    return lines.filter((line) => FENCE.test(line)).length % 2 === 1;
  };
  let escaped = false;
  body.addEventListener("keydown", (event) => {
    if (event.key === "Escape") { escaped = true; return; }
    const wasEscaped = escaped;
    escaped = false;
    if (event.key !== "Tab" || wasEscaped || event.ctrlKey || event.altKey || event.metaKey) return;
    if (body.readOnly || !inCodeBlock(body.value, body.selectionStart)) return;
    event.preventDefault();
    const start = body.value.lastIndexOf("\n", body.selectionStart - 1) + 1;
    const end = body.selectionEnd;
    const selected = body.value.slice(start, end);
    if (!event.shiftKey && body.selectionStart === end) {
      insert(INDENT, body.selectionStart, end);
      return;
    }
    const lines = selected.split("\n");
    const changed = lines.map((line) => (event.shiftKey
      ? line.replace(new RegExp(`^ {1,${INDENT.length}}|^\t`), "")
      : INDENT + line)).join("\n");
    const caret = body.selectionStart;
    insert(changed, start, end);
    const moved = event.shiftKey ? Math.max(start, caret - (selected.length - changed.length)) : caret + INDENT.length;
    if (lines.length === 1) body.setSelectionRange(moved, moved);
    else body.setSelectionRange(start, start + changed.length);
  });
  // Replace a range through the browser's editing commands, so Undo undoes it; the input event
  // they fire is what autosave and the preview listen to.
  const insert = (text, from, to) => {
    body.setSelectionRange(from, to);
    if (!document.execCommand("insertText", false, text)) {
      body.setRangeText(text, from, to, "end");
      body.dispatchEvent(new Event("input", { bubbles: true }));
    }
  };

  // The preview follows the cursor: find the heading sections around the cursor's line in the
  // Markdown and the same sections in the preview, and scroll to the same share of the section.
  const wide = window.matchMedia("(min-width: 60.01rem)");
  const cursorPlace = () => {
    const lines = body.value.split("\n");
    const line = body.value.slice(0, body.selectionStart).split("\n").length - 1;
    const headings = [];
    let fenced = false;
    lines.forEach((text, index) => {
      if (FENCE.test(text)) fenced = !fenced;
      else if (!fenced && /^\s{0,3}#{1,6}(\s|$)/.test(text)) headings.push(index);
    });
    const section = headings.filter((index) => index <= line).length; // 0: before any heading
    const from = section ? headings[section - 1] : 0;
    const to = section < headings.length ? headings[section] : lines.length;
    return { section, share: to > from ? (line - from) / (to - from) : 0 };
  };
  const previewOffset = ({ section, share }) => {
    const prose = previewPanel.querySelector(".prose");
    if (!prose) return 0;
    const headings = [...prose.querySelectorAll("h1, h2, h3, h4, h5, h6")];
    const top = (element) => element.getBoundingClientRect().top;
    const origin = top(previewPanel) - previewPanel.scrollTop;
    const from = section ? top(headings[section - 1] ?? prose) - origin : 0;
    const to = section < headings.length ? top(headings[section]) - origin
      : top(prose) - origin + prose.scrollHeight;
    return from + share * Math.max(0, to - from);
  };
  const follow = () => {
    if (!wide.matches || !previewPanel) return;
    const offset = previewOffset(cursorPlace());
    previewPanel.scrollTo({ top: Math.max(0, offset - previewPanel.clientHeight / 3) });
  };
  let pending = 0;
  const followSoon = () => { cancelAnimationFrame(pending); pending = requestAnimationFrame(follow); };
  body.addEventListener("keyup", followSoon);
  body.addEventListener("click", followSoon);
  body.addEventListener("focus", followSoon);

  // Narrow screens: Edit and Preview tabs instead of a preview squeezed under the text box.
  const tabs = document.querySelector(".editor-tabs");
  if (tabs && layout) {
    tabs.hidden = false;
    layout.classList.add("has-tabs");
    const buttons = [...tabs.querySelectorAll("[role=tab]")];
    const show = (view, focus = false) => {
      layout.dataset.view = view;
      for (const button of buttons) {
        const selected = button.id === `tab-${view}`;
        button.setAttribute("aria-selected", String(selected));
        button.tabIndex = selected ? 0 : -1;
        if (selected && focus) button.focus();
      }
      if (view === "preview" && !wide.matches) {
        const place = previewOffset(cursorPlace());
        const panelTop = previewPanel.getBoundingClientRect().top + window.scrollY;
        window.scrollTo({ top: Math.max(0, panelTop + place - window.innerHeight / 3) });
      }
    };
    for (const button of buttons) {
      button.addEventListener("click", () => show(button.id.slice(4)));
    }
    tabs.addEventListener("keydown", (event) => {
      if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
      show(layout.dataset.view === "edit" ? "preview" : "edit", true);
    });
  }

  // Fill the slug from the title until the author types a slug of their own.
  const slug = form.querySelector("[data-slug-from]");
  const title = form.querySelector("#title");
  const slugify = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
    .toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 190);
  if (slug && title) {
    let own = slug.value !== "" && slug.value !== slugify(title.value);
    slug.addEventListener("input", () => { own = slug.value !== ""; });
    title.addEventListener("input", () => { if (!own) slug.value = slugify(title.value); });
    // A title typed before this script ran (a slow network), or put back by the browser.
    if (!own && slug.value === "" && title.value) slug.value = slugify(title.value);
  }

  // Suggest existing tags for the word being typed after the last comma.
  const tagsField = form.querySelector("[data-tag-suggest]");
  const list = document.getElementById("tag-options");
  if (tagsField && list) {
    const known = JSON.parse(list.dataset.tags || "[]");
    tagsField.addEventListener("input", () => {
      const parts = tagsField.value.split(",");
      const typing = parts.pop().trim().toLowerCase();
      const before = parts.map((p) => p.trim()).filter(Boolean);
      const prefix = before.length ? before.join(", ") + ", " : "";
      list.replaceChildren(...known
        .filter((name) => name.toLowerCase().startsWith(typing) && !before.includes(name))
        .slice(0, 12)
        .map((name) => new Option(prefix + name)));
    });
  }

  offerKept(); // last: it may unlock a live article, and reads the fields as the page set them
})();
