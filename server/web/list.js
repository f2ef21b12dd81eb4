// list.js: the phrases, newest first, polled every second so that new
// sessions and their progress show without a reload.
"use strict";

(() => {
  const { api, el, when, percent } = referee;
  const tbody = document.querySelector("#sessions tbody");
  const filter = document.getElementById("unreviewed");
  const errorBox = document.getElementById("error");
  let last = null;
  let sessions = [];

  filter.checked = localStorage.getItem("referee.unreviewed") === "1";
  filter.addEventListener("change", () => {
    localStorage.setItem("referee.unreviewed", filter.checked ? "1" : "0");
    render();
  });

  function render() {
    const shown = sessions.filter((s) => !filter.checked || !s.review);
    tbody.replaceChildren(...shown.map(row));
    document.getElementById("count").textContent = shown.length + " of " + sessions.length;
    document.getElementById("empty").hidden = sessions.length > 0;
  }

  function row(s) {
    const tr = el("tr");
    tr.dataset.id = s.session_id;
    tr.className = "s-" + s.status;
    const a = el("a", s.session_id);
    a.href = "/sessions/" + encodeURIComponent(s.session_id);
    const id = el("td");
    id.appendChild(a);
    tr.appendChild(id);
    tr.appendChild(el("td", when(s.started_at), "time"));
    tr.appendChild(el("td", String(s.frames), "num"));
    tr.appendChild(el("td", s.status, "status " + s.status));
    const verdict = el("td", s.status === "failed" && s.failure ? "failed at " + s.failure.stage : s.winner, "winner " + (s.winner || ""));
    verdict.title = s.reason || "";
    tr.appendChild(verdict);
    tr.appendChild(el("td", s.status === "done" ? percent(s.confidence) : "", "num"));
    const rv = el("td", s.review ? s.review.call + " (" + s.review.referee + ")" : "not reviewed", s.review ? "reviewed" : "muted");
    tr.appendChild(rv);
    tr.addEventListener("click", (ev) => {
      if (ev.target.tagName !== "A") location.href = a.href;
    });
    return tr;
  }

  async function poll() {
    try {
      const body = await api("/api/sessions");
      const text = JSON.stringify(body.sessions);
      // In a cluster whose list cannot be read, the node lists its own.
      errorBox.hidden = !body.partial;
      errorBox.textContent = body.partial ? "Partial list: " + body.partial : "";
      if (text !== last) {
        last = text;
        sessions = body.sessions;
        render();
      }
    } catch (e) {
      errorBox.hidden = false;
      errorBox.textContent = "Cannot list the phrases: " + e.message;
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
