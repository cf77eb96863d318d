// Images in the editor (issue 10): add one with the button, by dropping a file onto the text or
// by pasting from the clipboard. The author is asked for alt text in a <dialog>; while the file
// uploads a placeholder marks the spot in the text (a paragraph of its own), then `![alt](url)`
// replaces it (or it goes away on an error, which is said in the toolbar's polite live region).
// An `input` event on the text box then refreshes the htmx preview and starts an autosave, as
// typing would.
"use strict";

(() => {
  const toolbar = document.querySelector("[data-media-toolbar]");
  const form = document.getElementById("editor-form");
  const body = form?.querySelector("#body");
  if (!toolbar || !body || !window.FormData || !window.HTMLDialogElement) return;

  const pick = toolbar.querySelector("[data-media-pick]");
  const fileInput = toolbar.querySelector("[data-media-file]");
  const progress = toolbar.querySelector("[data-media-progress]");
  const status = toolbar.querySelector("[data-media-status]");
  const dialog = toolbar.querySelector("[data-media-dialog]");
  const altInput = dialog.querySelector("[data-media-alt]");
  const fileName = dialog.querySelector("[data-media-filename]");
  toolbar.hidden = false;

  // The alt text box and the file input sit inside the editor form: their input events are not
  // the article's, so they must not start an autosave or a preview.
  for (const type of ["input", "change"]) {
    toolbar.addEventListener(type, (event) => event.stopPropagation());
  }

  // The upload address: the article's, or, for a new article, the one its first autosave made
  // (editor.js then points the form at /studio/<id>/edit).
  const uploadUrl = () => {
    if (toolbar.dataset.uploadUrl) return toolbar.dataset.uploadUrl;
    // getAttribute: form.action would name the form's "action" buttons, not its address.
    const action = new URL(form.getAttribute("action") ?? "", location.href).pathname;
    const match = action.match(/^(.*\/studio\/\d+)\/edit$/);
    return match ? `${match[1]}/media` : null;
  };
  const csrfToken = () => form.querySelector("input[name=csrf_token]")?.value ?? "";

  const say = (message, isError = false) => {
    status.textContent = message;
    status.classList.toggle("media-error", isError);
  };

  // Ask for the alt text; resolve to the text, or null when the author cancels.
  const askAlt = (file) => new Promise((resolve) => {
    fileName.textContent = file.name ? `File: ${file.name}` : "Pasted image";
    altInput.value = "";
    const finish = (value) => {
      dialog.removeEventListener("close", onClose);
      insert.removeEventListener("click", onInsert);
      altInput.removeEventListener("keydown", onKey);
      if (dialog.open) dialog.close();
      resolve(value);
    };
    const onInsert = () => finish(altInput.value.trim());
    const onClose = () => finish(null);  // Esc or Cancel
    // Enter inside the editor form would submit the article: here it inserts the image.
    const onKey = (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        onInsert();
      }
    };
    const insert = dialog.querySelector("[data-media-insert]");
    insert.addEventListener("click", onInsert);
    altInput.addEventListener("keydown", onKey);
    dialog.addEventListener("close", onClose);
    dialog.showModal();
    altInput.focus();
  });
  dialog.querySelector("[data-media-cancel]").addEventListener("click", () => dialog.close());

  const changed = () => body.dispatchEvent(new Event("input", { bubbles: true }));

  // Put text in place of the selection, as typing would (the browser's undo keeps it).
  const insertAt = (start, end, text) => {
    body.focus();
    body.setSelectionRange(start, end);
    if (!document.execCommand?.("insertText", false, text)) body.setRangeText(text, start, end, "end");
  };
  const replacePlaceholder = (placeholder, text) => {
    const at = body.value.indexOf(placeholder);
    if (at < 0) return false;
    body.setRangeText(text, at, at + placeholder.length, "end");
    return true;
  };

  // Send the file with its alt text; resolve to the server's JSON answer and status.
  const send = (url, file, alt) => new Promise((resolve) => {
    const data = new FormData();
    data.append("file", file, file.name || "pasted-image");
    data.append("alt", alt);
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.responseType = "json";
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress.value = Math.round((100 * event.loaded) / event.total);
    });
    request.addEventListener("load", () => resolve({ status: request.status, json: request.response }));
    request.addEventListener("error", () => resolve({ status: 0, json: null }));
    request.send(data);
  });

  let counter = 0;
  const upload = async (file) => {
    if (!file.type.startsWith("image/")) {
      say(`“${file.name}” is not an image: choose a JPEG, PNG, GIF or WebP file.`, true);
      return;
    }
    // Said before a long upload rather than after it; the server checks again (413).
    const maxBytes = Number(toolbar.dataset.maxBytes) || Infinity;
    if (file.size > maxBytes) {
      const megabytes = (bytes) => (bytes / 1048576).toFixed(1);
      say(`“${file.name || "The pasted image"}” is ${megabytes(file.size)} MB: `
        + `images may be at most ${megabytes(maxBytes)} MB.`, true);
      return;
    }
    const url = uploadUrl();
    if (!url) {
      say("Type a few words first: images can be added once the draft has been saved.", true);
      return;
    }
    if (body.readOnly) {
      say("Start a new draft first: this article is live.", true);
      return;
    }
    const start = body.selectionStart;
    const end = body.selectionEnd;
    const alt = await askAlt(file);
    if (alt === null) {
      body.focus();
      body.setSelectionRange(start, end);
      return;
    }
    counter += 1;
    const placeholder = `![Uploading image ${counter}…]()`;
    // A picture is a paragraph of its own (a figure with its caption), never the tail of the
    // line it was added after: right after "- two" Markdown would make it part of the list.
    const before = body.value.slice(0, start);
    const after = body.value.slice(end);
    const lead = before === "" || before.endsWith("\n\n") ? "" : before.endsWith("\n") ? "\n" : "\n\n";
    const trail = after === "" || after.startsWith("\n\n") ? "" : after.startsWith("\n") ? "\n" : "\n\n";
    insertAt(start, end, lead + placeholder + trail);
    progress.removeAttribute("value");  // indeterminate until the first progress event
    progress.hidden = false;
    say(`Uploading ${file.name || "the pasted image"}…`);
    const { status: code, json } = await send(url, file, alt);
    progress.hidden = true;
    if (code === 201 && json?.markdown) {
      replacePlaceholder(placeholder, json.markdown);
      say(`Image added (${json.width} × ${json.height} pixels).`);
    } else {
      if (!replacePlaceholder(lead + placeholder + trail, "")) replacePlaceholder(placeholder, "");
      const reason = json?.error ?? (code === 0 ? "the connection failed." : `the server answered ${code}.`);
      say(`The image was not added: ${reason}`, true);
    }
    changed();
  };
  const uploadAll = async (files) => {
    for (const file of files) await upload(file);
  };

  pick.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    const files = [...fileInput.files];
    fileInput.value = "";
    uploadAll(files);
  });

  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  body.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    body.classList.add("media-drop-target");
  });
  body.addEventListener("dragleave", () => body.classList.remove("media-drop-target"));
  body.addEventListener("drop", (event) => {
    body.classList.remove("media-drop-target");
    if (!hasFiles(event)) return;
    event.preventDefault();
    uploadAll([...event.dataTransfer.files]);
  });

  body.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files ?? [])].filter((f) => f.type.startsWith("image/"));
    if (!files.length) return;  // text pastes as text
    event.preventDefault();
    uploadAll(files);
  });
})();
