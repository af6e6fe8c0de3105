/* The destinations page's live parts: "Get notifications in this browser" (Web Push),
   and the "Copy" buttons of the feed addresses. Without JavaScript, or without Web
   Push in the browser, the page works as it is: the buttons stay hidden. */
"use strict";

(() => {
  const CSRF_HEADER = "X-CSRF-Token";

  function show(element) {
    if (element) {
      element.hidden = false;
    }
  }

  /* base64url (the VAPID key as the API serves it) to bytes */
  function bytes(text) {
    const plain = text.replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(plain + "=".repeat((4 - (plain.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  }

  function sameKey(buffer, key) {
    if (!buffer) {
      return false;
    }
    const given = new Uint8Array(buffer);
    return given.length === key.length && given.every((b, i) => b === key[i]);
  }

  /* A short name the person recognises this browser by: "Firefox on Linux". */
  function label() {
    const agent = navigator.userAgent;
    const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"],
                     ["Chromium/", "Chromium"], ["Safari/", "Safari"]]
      .find(([mark]) => agent.includes(mark));
    const system = [["Android", "Android"], ["iPhone", "iOS"], ["iPad", "iPadOS"],
                    ["Windows", "Windows"], ["Mac OS X", "macOS"], ["CrOS", "ChromeOS"],
                    ["Linux", "Linux"]].find(([mark]) => agent.includes(mark));
    if (!browser) {
      return null;
    }
    return system ? `${browser[1]} on ${system[1]}` : browser[1];
  }

  async function api(box, method, url, body) {
    const headers = {"Accept": "application/json"};
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers[CSRF_HEADER] = box.dataset.csrf;
    }
    const answer = await fetch(url, {method, headers, credentials: "same-origin",
                                     body: body === undefined ? undefined : JSON.stringify(body)});
    const data = await answer.json().catch(() => ({}));
    if (!answer.ok) {
      const field = data.errors && data.errors[0];
      const detail = field ? `${field.field}: ${field.detail}` : (data.detail || data.title);
      throw new Error(detail || `the server answered ${answer.status}`);
    }
    return data;
  }

  /* Mark the listed browser that is this one. */
  function markThisBrowser(box, subscription) {
    const items = document.querySelectorAll("[data-endpoint]");
    let found = false;
    for (const item of items) {
      const mine = subscription && item.dataset.endpoint === subscription.endpoint;
      const tag = item.querySelector("[data-this-browser]");
      if (tag) {
        tag.hidden = !mine;
      }
      found = found || mine;
    }
    const button = box.querySelector("#push-subscribe");
    button.textContent = found ? "Renew notifications in this browser"
      : "Get notifications in this browser";
  }

  async function subscribe(box, say) {
    const permission = await Notification.requestPermission();
    if (permission !== "granted") {
      say("This browser does not allow this site's notifications. Allow them in the " +
          "site's settings, then try again.");
      return;
    }
    say("Subscribing this browser…");
    const registration = await navigator.serviceWorker.register(box.dataset.worker,
                                                                {scope: box.dataset.scope});
    const {key} = await api(box, "GET", box.dataset.key);
    const serverKey = bytes(key);
    let subscription = await registration.pushManager.getSubscription();
    if (subscription && !sameKey(subscription.options.applicationServerKey, serverKey)) {
      await subscription.unsubscribe();  // made with another key: the service cannot use it
      subscription = null;
    }
    if (!subscription) {
      try {
        subscription = await registration.pushManager.subscribe(
          {userVisibleOnly: true, applicationServerKey: serverKey});
      } catch (error) {
        say(`This browser's push service could not subscribe it: ${error.message}`);
        return;
      }
    }
    const added = await api(box, "POST", box.dataset.subscriptions,
                            {...subscription.toJSON(), label: label()});
    say(`This browser gets your notifications now (browser ${added.id}). Reloading the list…`);
    window.location.reload();
  }

  async function setUpPush(box) {
    const status = box.querySelector("#push-status");
    const say = (text) => { status.textContent = text; };
    const button = box.querySelector("#push-subscribe");
    show(box);
    const registration = await navigator.serviceWorker.getRegistration(box.dataset.scope);
    const current = registration ? await registration.pushManager.getSubscription() : null;
    markThisBrowser(box, current);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        await subscribe(box, say);
      } catch (error) {
        say(`Could not subscribe this browser: ${error.message}`);
      } finally {
        button.disabled = false;
      }
    });
  }

  function setUpCopy() {
    if (!navigator.clipboard || !window.isSecureContext) {
      return;
    }
    for (const button of document.querySelectorAll("[data-copy-from]")) {
      const input = document.getElementById(button.dataset.copyFrom);
      const status = document.getElementById(button.dataset.copyStatus);
      if (!input) {
        continue;
      }
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(input.value);
          status.textContent = "Copied.";
        } catch (error) {
          input.select();
          status.textContent = "Could not copy: the address is selected, copy it yourself.";
        }
      });
      show(button.parentElement);
    }
  }

  const box = document.getElementById("push");
  if (box && window.isSecureContext && "serviceWorker" in navigator &&
      "PushManager" in window && "Notification" in window) {
    setUpPush(box).catch((error) => {
      box.querySelector("#push-status").textContent = `Web Push is not available: ${error.message}`;
    });
  }
  setUpCopy();
})();
