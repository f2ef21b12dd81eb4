// common.js: what both pages share: the API calls, with the one-time
// exchange of the server's token for a cookie, and small helpers.
"use strict";

const referee = (() => {
  let loginWait = null;

  // api fetches a path of the review API as JSON. When the server wants
  // the token, it asks for it once, trades it for the cookie at
  // POST /api/login, and tries again.
  async function api(path, options) {
    for (;;) {
      const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
      if (resp.status === 401) {
        await login();
        continue;
      }
      const text = await resp.text();
      let body = null;
      try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
      if (!resp.ok) {
        const msg = body && body.error_message ? body.error_message : resp.status + " " + resp.statusText;
        const err = new Error(msg);
        err.status = resp.status;
        throw err;
      }
      return body;
    }
  }

  // login shows the token form until the server takes a token.
  function login() {
    if (loginWait) return loginWait;
    loginWait = new Promise((resolve) => {
      const box = document.createElement("form");
      box.className = "login";
      box.innerHTML = '<h2>This server wants its token</h2>' +
        '<label>Token <input type="password" name="token" autocomplete="current-password" required></label>' +
        '<button type="submit">Log in</button><p class="error" hidden></p>';
      document.body.appendChild(box);
      const input = box.querySelector("input");
      input.focus();
      box.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const resp = await fetch("/api/login", {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: input.value }),
        });
        if (resp.ok) {
          box.remove();
          loginWait = null;
          resolve();
          return;
        }
        const p = box.querySelector(".error");
        p.hidden = false;
        p.textContent = "The server refused the token: check it and try again.";
      });
    });
    return loginWait;
  }

  // el makes an element with text.
  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }

  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function percent(x) {
    return typeof x === "number" ? Math.round(x * 100) + "%" : "";
  }

  // The colours of timeline.png and the overlay (pipeline/timeline).
  const colours = {
    left: "rgb(230,60,60)", right: "rgb(60,200,60)",
    blade_contact: "rgb(255,215,0)", lockout_started: "rgb(200,200,200)",
    advance: "rgb(60,160,230)", lunge: "rgb(220,80,220)", pause: "rgb(120,120,120)",
    retreat: "rgb(230,140,40)", unseen: "rgb(50,50,50)",
  };

  return { api, el, when, percent, colours };
})();
