/* notifier's service worker: shows the Web Push notifications this service sends,
   and opens a notification's link when it is clicked.

   The payload is the JSON the webpush destination writes (its format is described
   in one place, the docstring of backends/pushpayload.py): title, body, link, icon, tag
   (the message id), app, topic, severity, timestamp (seconds). A notification keeps
   the link, app and severity in its data; one with the same tag replaces the
   previous one, so a message pushed twice shows once. */
"use strict";

/* where notifications without a link lead: the inbox, under the worker's scope */
const INBOX = new URL("inbox", self.registration.scope).href;

/* The title and options of the notification for a push's payload (null: no payload). */
function notificationFor(message) {
  if (!message || typeof message !== "object" || typeof message.title !== "string" ||
      !message.title) {
    return {title: "New notification", options: {body: "", tag: "notifier",
                                                  data: {link: INBOX}}};
  }
  const options = {
    body: typeof message.body === "string" ? message.body : "",
    tag: typeof message.tag === "string" && message.tag ? message.tag : undefined,
    data: {link: safeLink(message.link), app: message.app || null,
           severity: message.severity || null, tag: message.tag || null},
    requireInteraction: message.severity === "error",
  };
  if (typeof message.icon === "string" && /^https?:\/\//i.test(message.icon)) {
    options.icon = message.icon;
  }
  if (typeof message.timestamp === "number" && message.timestamp > 0) {
    options.timestamp = Math.round(message.timestamp * 1000);
  }
  return {title: message.title, options};
}

/* A link a click may open: http or https only, else the inbox. */
function safeLink(link) {
  if (typeof link !== "string" || !link) {
    return INBOX;
  }
  try {
    const url = new URL(link, self.registration.scope);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : INBOX;
  } catch (error) {
    return INBOX;
  }
}

function parse(data) {
  if (!data) {
    return null;
  }
  try {
    return data.json();
  } catch (error) {
    return null;
  }
}

self.addEventListener("install", () => self.skipWaiting());

self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  const {title, options} = notificationFor(parse(event.data));
  event.waitUntil(self.registration.showNotification(title, options));
});

/* The window to focus for ``link`` (one showing it already), or null: open a new one. */
async function windowShowing(link) {
  const windows = await self.clients.matchAll({type: "window", includeUncontrolled: true});
  return windows.find((client) => client.url === link) || null;
}

/* What a click on ``notification`` does: focus the tab showing its link, or open one. */
async function openLink(notification) {
  const link = safeLink(notification.data && notification.data.link);
  const client = await windowShowing(link);
  if (client) {
    return client.focus();
  }
  return self.clients.openWindow(link);
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openLink(event.notification));
});
