// The settings page: an empty time zone field gets the browser's own zone.
// Without this script the field is simply empty; the server checks whatever is sent.
"use strict";

(() => {
  const field = document.querySelector("input[data-browser-zone]");
  if (!field || field.value) {
    return;
  }
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (typeof zone === "string" && zone) {
    field.value = zone;
  }
})();
