// The rule editor's live parts. The page works without them: the form posts, and its
// preview button shows the preview on a new page. With them:
//  * only the list of the chosen kind of tracking is shown;
//  * the preview follows the form as the person edits it (POST /api/v1/rule-preview,
//    with the session's cookie and CSRF token), problems shown next to their fields;
//  * package, user, group and application fields complete names as they are typed
//    (an ARIA combobox over the API's look-ups).
"use strict";

(() => {
  const form = document.getElementById("rule-editor");
  const region = document.getElementById("preview");
  const body = document.getElementById("preview-body");
  if (!form || !region || !body) return;

  const api = form.dataset.api;
  const csrf = form.elements.namedItem("csrf_token").value;
  const since = form.elements.namedItem("since");
  const PREVIEW_DELAY_MS = 300;
  const LOOKUP_DELAY_MS = 200;
  const PREVIEW_LIMIT = 20;
  const SUGGESTIONS = 10;
  // fields the preview does not read
  const UNREAD = new Set(["name", "destinations", "enabled", "csrf_token", "rule"]);

  const split = (text) => text.split(/[\n,]/).map((part) => part.trim()).filter(Boolean);
  const element = (tag, props = {}, ...children) => {
    const made = Object.assign(document.createElement(tag), props);
    made.append(...children);
    return made;
  };

  async function getJson(path, signal) {
    const answer = await fetch(api + path, {
      credentials: "same-origin", signal, headers: {Accept: "application/json"}});
    if (!answer.ok) throw new Error(`${answer.status} ${answer.statusText}`);
    return answer.json();
  }

  // ---- the kind of tracking, and its list --------------------------------------------

  const chosenKind = () => form.querySelector('input[name="kind"]:checked')?.value ?? "";
  const targetOf = (kind) => form.querySelector(`.field[data-kind="${CSS.escape(kind)}"]`);

  function showKind() {
    const kind = chosenKind();
    for (const part of form.querySelectorAll("[data-kind]")) {
      part.hidden = part.dataset.kind !== kind;
    }
  }

  /** The rule the form describes, as the API takes it (what the server's form reading does). */
  function ruleFromForm() {
    const kind = chosenKind();
    const track = {kind};
    const target = targetOf(kind);
    if (target) {
      const names = split(target.querySelector("input, textarea").value);
      if (names.length) track[target.dataset.track] = names;
    }
    const value = (name) => form.elements.namedItem(name).value;
    const topic = value("topic").trim();
    return {
      track,
      filters: {
        applications: split(value("applications")),
        excluded_applications: split(value("excluded_applications")),
        severities: [...form.querySelectorAll('input[name="severities"]:checked')]
          .map((box) => box.value),
        my_actions: form.elements.namedItem("my_actions").checked,
        topic: topic || null,
      },
    };
  }

  // ---- problems next to their fields ---------------------------------------------------

  /** The form field a problem's path names (the server's editor maps them the same way). */
  function fieldOf(path) {
    const bare = path.replace(/^rule\./, "");
    const top = bare.split(/[.[]/)[0];
    if (top === "since") return "since";
    if (top === "track") {
      const target = targetOf(chosenKind());
      const list = target && bare.startsWith(`track.${target.dataset.track}`);
      return list ? target.querySelector("input, textarea").name : "kind";
    }
    if (top === "filters") {
      const name = bare.split(/[.[]/)[1];
      if (form.elements.namedItem(name)) return name;
    }
    return "";
  }

  /** Where a field's problems go, and the element they describe. */
  function placeOf(name) {
    const control = document.getElementById(name);
    if (control) {
      return {box: control.closest(".field, .preview-controls"), described: control,
              mark: true};
    }
    const group = form.querySelector(`[name="${CSS.escape(name)}"]`)?.closest("fieldset");
    return group ? {box: group, described: group, mark: false} : null;
  }

  const PREVIEWED = () => ["kind", "since", "applications", "excluded_applications",
    "severities", "my_actions", "topic",
    ...[...form.querySelectorAll(".targets [data-kind] :is(input, textarea)")]
      .map((field) => field.name)];

  function dropProblems(name) {
    const place = placeOf(name);
    if (!place?.box) return;
    for (const list of place.box.querySelectorAll(":scope > ul.errors")) {
      for (const user of document.querySelectorAll("[aria-describedby]")) {
        const ids = user.getAttribute("aria-describedby").split(/\s+/)
          .filter((id) => id && id !== list.id);
        if (ids.length) user.setAttribute("aria-describedby", ids.join(" "));
        else user.removeAttribute("aria-describedby");
      }
      list.remove();
    }
    if (place.mark) place.described.removeAttribute("aria-invalid");
  }

  function showProblems(errors) {
    const byField = new Map();
    const loose = [];
    for (const error of errors) {
      const name = fieldOf(String(error.field ?? ""));
      if (name && placeOf(name)?.box) {
        byField.set(name, [...(byField.get(name) ?? []), error.detail]);
      } else {
        loose.push(error.field ? `${error.field}: ${error.detail}` : error.detail);
      }
    }
    for (const [name, details] of byField) {
      const place = placeOf(name);
      const list = element("ul", {className: "errors", id: `${name}-errors`},
        ...details.map((detail) => element("li", {}, detail)));
      place.box.append(list);
      const ids = (place.described.getAttribute("aria-describedby") ?? "").split(/\s+/);
      place.described.setAttribute("aria-describedby",
        [...ids.filter(Boolean), list.id].join(" "));
      if (place.mark) place.described.setAttribute("aria-invalid", "true");
    }
    return loose;
  }

  // ---- the preview ---------------------------------------------------------------------

  const when = (seconds) =>
    `${new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  const isWebLink = (link) => typeof link === "string" && /^https?:\/\//i.test(link);

  function renderPreview(found) {
    const {total, messages} = found;
    let count;
    if (!total) {
      count = `No stored message since ${when(found.since)} matches this rule.`;
    } else {
      count = `${total}${found.total_exact ? "" : "+"} message${total === 1 ? "" : "s"} ` +
        `since ${when(found.since)}` +
        (messages.length < total ? `; the newest ${messages.length}:` : ":");
    }
    const parts = [element("p", {}, count)];
    parts[0].dataset.previewTotal = "";
    if (messages.length) {
      parts.push(element("ol", {className: "preview-list"}, ...messages.map((message) => {
        const text = message.summary || message.topic || "";
        const title = isWebLink(message.link)
          ? element("a", {href: message.link, rel: "noopener noreferrer"}, text) : text;
        const time = element("time", {dateTime: new Date(message.timestamp * 1000)
          .toISOString().replace(/\.\d+Z$/, "Z")}, when(message.timestamp));
        return element("li", {}, title, " ",
          element("span", {className: "sub"}, time, ` · ${message.app ?? ""}`));
      })));
    }
    body.replaceChildren(...parts);
  }

  function renderTrouble(lines) {
    body.replaceChildren(element("p", {className: "hint"}, lines[0]),
      ...(lines.length > 1
        ? [element("ul", {className: "errors"}, ...lines.slice(1).map((l) => element("li", {}, l)))]
        : []));
  }

  let timer = 0;
  let pending = null;
  let shown = "";  // the request whose answer the preview shows

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(update, PREVIEW_DELAY_MS);
  }

  async function update(force = false) {
    clearTimeout(timer);
    const request = JSON.stringify(
      {rule: ruleFromForm(), since: since.value, limit: PREVIEW_LIMIT});
    if (request === shown && !force) return;
    pending?.abort();  // an older answer would show a rule the person has left
    const controller = new AbortController();
    pending = controller;
    region.setAttribute("aria-busy", "true");
    try {
      const answer = await fetch(`${api}/rule-preview`, {
        method: "POST", credentials: "same-origin", signal: controller.signal, body: request,
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf,
                  Accept: "application/json, application/problem+json"}});
      const found = await answer.json().catch(() => ({}));
      if (controller.signal.aborted) return;
      for (const name of PREVIEWED()) dropProblems(name);
      if (answer.ok) {
        renderPreview(found);
      } else if (answer.status === 422 && Array.isArray(found.errors)) {
        const loose = showProblems(found.errors);
        renderTrouble(["No preview yet: correct the fields marked above.", ...loose]);
      } else {
        renderTrouble([`No preview: ${found.title ?? answer.statusText}` +
          (found.detail ? ` (${found.detail})` : "")]);
      }
      shown = answer.ok || answer.status === 422 ? request : "";
    } catch (error) {
      if (error.name !== "AbortError") renderTrouble([`No preview: ${error.message}`]);
    } finally {
      if (pending === controller) {
        pending = null;
        region.removeAttribute("aria-busy");
      }
    }
  }

  // ---- completion as you type ------------------------------------------------------------

  const announcer = element("p", {className: "vh", id: "completion-status"});
  announcer.setAttribute("role", "status");
  form.append(announcer);

  let applications = null;  // the applications look-up, fetched once
  const sources = {
    applications: async (prefix, signal) => {
      applications ??= getJson("/lookups/applications", signal).catch((error) => {
        applications = null;
        throw error;
      });
      const lower = prefix.toLowerCase();
      return (await applications).filter((name) => name.startsWith(lower));
    },
    packages: (prefix, signal) => lookup("packages", prefix, signal),
    users: (prefix, signal) => lookup("users", prefix, signal),
    groups: (prefix, signal) => lookup("groups", prefix, signal),
  };

  function lookup(what, prefix, signal) {
    const query = new URLSearchParams({prefix, limit: String(SUGGESTIONS + 5)});
    return getJson(`/lookups/${what}?${query}`, signal);
  }

  /** The name under the caret: where it starts and ends in the field, and its text. */
  function segment(input) {
    const value = input.value;
    const caret = input.selectionStart ?? value.length;
    const start = value.slice(0, caret).search(/[^,\n]*$/);
    const rest = value.slice(caret).search(/[,\n]/);
    const end = rest < 0 ? value.length : caret + rest;
    return {start, end, text: value.slice(start, end).trim()};
  }

  function combobox(input, source) {
    const list = element("ul", {id: `${input.id}-options`, className: "completions",
                                hidden: true});
    list.setAttribute("role", "listbox");
    const label = form.querySelector(`label[for="${CSS.escape(input.id)}"]`);
    list.setAttribute("aria-label", `Suggestions: ${label?.textContent.trim() ?? input.name}`);
    input.after(list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);

    let names = [];
    let active = -1;
    let wait = 0;
    let controller = null;

    function close() {
      clearTimeout(wait);
      controller?.abort();
      names = [];
      active = -1;
      list.hidden = true;
      list.replaceChildren();
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }

    function highlight(index) {
      active = index;
      for (const [i, option] of [...list.children].entries()) {
        option.setAttribute("aria-selected", String(i === active));
      }
      const option = list.children[active];
      if (option) {
        input.setAttribute("aria-activedescendant", option.id);
        option.scrollIntoView({block: "nearest"});
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function open(found) {
      names = found;
      active = -1;
      list.replaceChildren(...names.map((name, i) => {
        const option = element("li", {id: `${list.id}-${i}`}, name);
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        option.dataset.name = name;
        return option;
      }));
      list.hidden = names.length === 0;
      input.setAttribute("aria-expanded", String(names.length > 0));
      input.removeAttribute("aria-activedescendant");
      announcer.textContent = names.length
        ? `${names.length} suggestion${names.length === 1 ? "" : "s"}; ` +
          "up and down arrows to choose, Enter to take one" : "";
    }

    async function suggest() {
      const {start, end, text} = segment(input);
      controller?.abort();
      if (!text) {
        close();
        return;
      }
      const mine = new AbortController();
      controller = mine;
      try {
        const taken = new Set(split(input.value.slice(0, start) + "," + input.value.slice(end)));
        const found = (await source(text, mine.signal)).filter((name) => !taken.has(name));
        if (!mine.signal.aborted && document.activeElement === input) {
          open(found.slice(0, SUGGESTIONS));
        }
      } catch (error) {
        if (error.name !== "AbortError") close();
      }
    }

    function pick(name) {
      const {start, end} = segment(input);
      const before = input.value.slice(0, start).trimEnd();
      const after = input.value.slice(end);
      const head = `${before}${before ? " " : ""}${name}`;
      input.value = head + (after.trim() ? after : ", ");
      const caret = head.length + (after.trim() ? 0 : 2);
      input.setSelectionRange(caret, caret);
      close();
      announcer.textContent = `${name} added`;
      input.dispatchEvent(new Event("input", {bubbles: true}));
    }

    input.addEventListener("input", () => {
      clearTimeout(wait);
      wait = setTimeout(suggest, LOOKUP_DELAY_MS);
    });
    input.addEventListener("keydown", (event) => {
      const isOpen = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!isOpen) {
          suggest();
          return;
        }
        const step = event.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + names.length + (active < 0 && step < 0 ? 1 : 0))
          % names.length);
      } else if (event.key === "Enter" && isOpen && active >= 0) {
        event.preventDefault();  // take the name; the form is not sent
        pick(names[active]);
      } else if (event.key === "Escape" && isOpen) {
        event.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", close);
    list.addEventListener("mousedown", (event) => event.preventDefault());  // keep the focus
    list.addEventListener("click", (event) => {
      const option = event.target.closest('[role="option"]');
      if (option) pick(option.dataset.name);
    });
  }

  // ---- wiring --------------------------------------------------------------------------

  for (const input of form.querySelectorAll("input[data-lookup]")) {
    const source = sources[input.dataset.lookup];
    if (source) combobox(input, source);
  }
  form.addEventListener("input", (event) => {
    if (!UNREAD.has(event.target.name)) schedule();
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "kind") showKind();
    if (!UNREAD.has(event.target.name)) schedule();
  });
  const previewButton = form.querySelector(`button[formaction$="/rules/preview"]`);
  previewButton?.addEventListener("click", (event) => {
    event.preventDefault();  // the same preview, on this page
    update(true);
  });
  showKind();
  update();
})();
