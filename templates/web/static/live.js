// notifier's live parts, on every signed-in page: the unread count follows the inbox's
// live stream (GET /api/v1/notifications/stream); the inbox's newest page puts new
// notifications on top of its list, in the server's own markup (GET /inbox/new); and,
// once the person allows it, each new notification also shows as a browser notification.
// Without this script every page works as it is: it only adds what changes meanwhile.
"use strict";

(() => {
  const base = document.currentScript ? document.currentScript.dataset.base || "" : "";
  const list = document.querySelector("[data-live-list]");
  const announcer = document.querySelector("[data-live-announce]");
  const permissionButton = document.querySelector("[data-notify-permission]");
  const permissionState = document.querySelector("[data-notify-state]");
  const canNotify = "Notification" in window;
  let counts = null;
  let source = null;
  let fetching = false;
  let fetchAgain = false;
  let arrived = [];

  function announce(text) {
    if (announcer) {
      announcer.textContent = text;
    }
  }

  function showCounts() {
    for (const el of document.querySelectorAll("[data-unread-count], [data-badge-count]")) {
      el.textContent = String(counts.unread);
    }
    for (const el of document.querySelectorAll("[data-counts]")) {
      el.lastChild.textContent = ` unread of ${counts.total}`;
    }
    for (const el of document.querySelectorAll("[data-unread], [data-read-all]")) {
      el.hidden = counts.unread === 0;
    }
  }

  // The newest notification the list shows (or knew of when the page was made).
  function newestShown() {
    let newest = Number(list.dataset.after) || 0;
    for (const item of list.children) {
      const id = Number(item.id.replace(/^n/, ""));
      if (id > newest) {
        newest = id;
      }
    }
    return newest;
  }

  async function addNewItems() {
    if (fetching) {
      fetchAgain = true;
      return;
    }
    fetching = true;
    try {
      do {
        fetchAgain = false;
        const query = new URLSearchParams({after: String(newestShown()),
                                           back: list.dataset.back || "/inbox"});
        const answer = await fetch(`${base}/inbox/new?${query}`, {
          credentials: "same-origin", redirect: "error", headers: {Accept: "text/html"}});
        if (!answer.ok) {
          return;
        }
        const template = document.createElement("template");
        template.innerHTML = await answer.text();
        const fresh = [...template.content.children].filter(
          (item) => item.id && !document.getElementById(item.id));
        const first = list.firstElementChild;
        for (const item of fresh) {  // newest first, as the list is
          item.classList.add("arrived");
          list.insertBefore(item, first);
        }
        if (fresh.length) {
          list.hidden = false;
          for (const empty of document.querySelectorAll("[data-empty]")) {
            empty.remove();
          }
          const upTo = document.querySelector("[data-read-all] input[name='up_to']");
          if (upTo) {
            upTo.value = String(newestShown());
          }
          announceArrivals(fresh.length);
        }
      } while (fetchAgain);
    } catch (error) {
      // offline, or signed out meanwhile: the next notification tries again
    } finally {
      fetching = false;
    }
  }

  function announceArrivals(n) {
    const titles = arrived;
    arrived = [];
    if (n === 1 && titles.length === 1) {
      announce(`New notification: ${titles[0]}`);
    } else {
      announce(`${n} new notifications`);
    }
  }

  function linkOf(item) {
    if (typeof item.link === "string" && /^https?:\/\//i.test(item.link)) {
      return item.link;
    }
    return `${location.origin}${base}/inbox/${item.id}/why`;
  }

  function notifyBrowser(item) {
    if (!canNotify || Notification.permission !== "granted") {
      return;
    }
    const body = [item.app, item.severity !== "info" ? item.severity : "", item.topic]
      .filter(Boolean).join(" · ");
    try {
      const shown = new Notification(item.title, {body, tag: `notifier-${item.id}`});
      shown.addEventListener("click", (event) => {
        event.preventDefault();
        window.open(linkOf(item), "_blank", "noopener");
        shown.close();
      });
    } catch (error) {
      // some browsers show notifications only through a service worker
    }
  }

  function onCounts(event) {
    counts = JSON.parse(event.data);
    showCounts();
  }

  function onNotification(event) {
    const item = JSON.parse(event.data);
    if (counts) {
      counts.total += 1;
      counts.unread += item.read ? 0 : 1;
      showCounts();
    }
    if (list) {
      arrived.push(item.title);
      addNewItems();
    } else {
      announce(`New notification: ${item.title}`);
    }
    notifyBrowser(item);
  }

  function connect() {
    if (source || !("EventSource" in window)) {
      return;
    }
    // The inbox page starts where it was made, so nothing that came meanwhile is missed.
    const since = list ? `?since=${newestShown()}` : "";
    source = new EventSource(`${base}/api/v1/notifications/stream${since}`);
    source.addEventListener("counts", onCounts);
    source.addEventListener("notification", onNotification);
  }

  function disconnect() {
    if (source) {
      source.close();
      source = null;
    }
  }

  function showPermission() {
    if (!permissionButton) {
      return;
    }
    const permission = canNotify ? Notification.permission : "unsupported";
    permissionButton.hidden = permission !== "default";
    if (permissionState) {
      const text = {
        granted: "Browser notifications are on while a page of this site is open.",
        denied: "This browser blocks notifications from this site; its site settings can " +
                "allow them.",
      }[permission] || "";
      permissionState.textContent = text;
      permissionState.hidden = !text;
    }
  }

  if (permissionButton && canNotify) {
    permissionButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      showPermission();
      if (permissionState && permissionState.textContent) {
        announce(permissionState.textContent);
      }
    });
  }

  showPermission();
  connect();
  // Leave no stream open behind a page kept in the back-forward cache.
  window.addEventListener("pagehide", disconnect);
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      connect();
    }
  });
})();
