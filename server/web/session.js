// session.js: one phrase: the replay, the timeline of the analysis, the
// verdict and the referee's call.
"use strict";

(() => {
  const { api, el, when, percent, colours } = referee;
  const key = decodeURIComponent(location.pathname.replace(/^\/sessions\//, ""));
  const base = "/api/sessions/" + encodeURIComponent(key);
  const video = document.getElementById("video");
  const canvas = document.getElementById("timeline");
  const clock = document.getElementById("clock");
  const playBtn = document.getElementById("play");
  const refereeInput = document.getElementById("referee");
  const note = document.getElementById("note");
  const callMsg = document.getElementById("callmsg");

  let detail = null;
  let tl = null; // the result's timeline
  let fps = 30;
  let offset = 0; // seconds of the phrase before the source's first frame
  let events = [];

  document.getElementById("title").textContent = key;
  refereeInput.value = localStorage.getItem("referee.name") || "";
  refereeInput.addEventListener("change", () => localStorage.setItem("referee.name", refereeInput.value.trim()));

  // The phrase's time shown now: the source's time plus its offset.
  const phraseTime = () => video.currentTime + offset;
  const frameAt = (t) => Math.max(0, Math.floor(t * fps + 1e-6));

  // seekFrame shows frame n of the phrase: the middle of the frame, so
  // that the decoder lands on it whatever the rounding.
  function seekFrame(n) {
    const t = (n + 0.5) / fps - offset;
    const d = video.duration;
    video.currentTime = Math.min(Math.max(t, 0), isFinite(d) ? Math.max(0, d - 0.5 / fps) : t);
  }

  function step(d) {
    video.pause();
    seekFrame(frameAt(phraseTime()) + d);
  }

  function togglePlay() {
    if (video.paused) video.play(); else video.pause();
  }

  function jumpEvent(dir) {
    const now = frameAt(phraseTime());
    const list = dir > 0 ? events.filter((e) => e.frame > now) : events.filter((e) => e.frame < now).reverse();
    if (list.length) {
      video.pause();
      seekFrame(list[0].frame);
    }
  }

  function setRate(r) {
    video.playbackRate = r;
    document.querySelectorAll(".speeds button").forEach((b) => b.classList.toggle("on", Number(b.dataset.rate) === r));
  }

  playBtn.addEventListener("click", togglePlay);
  document.getElementById("back").addEventListener("click", () => step(-1));
  document.getElementById("fwd").addEventListener("click", () => step(1));
  document.querySelectorAll(".speeds button").forEach((b) => b.addEventListener("click", () => setRate(Number(b.dataset.rate))));
  video.addEventListener("play", () => { playBtn.textContent = "\u23f8 pause"; });
  video.addEventListener("pause", () => { playBtn.textContent = "\u25b6 play"; });
  video.addEventListener("timeupdate", showTime);
  video.addEventListener("seeked", showTime);
  video.addEventListener("ratechange", () => setRate(video.playbackRate));

  function showTime() {
    // The frame shown and its time in the phrase, as the overlay writes
    // them (frame / fps).
    const n = frameAt(phraseTime());
    clock.textContent = "frame " + n + " \u00b7 " + (n / fps).toFixed(3) + " s";
    draw();
  }

  // The loop that moves the playhead smoothly while playing.
  function tick() {
    if (!video.paused) showTime();
    requestAnimationFrame(tick);
  }
  requestAnimationFrame(tick);

  // A clicked button gives the focus back, so that space then plays or
  // pauses instead of pressing that button again.
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest && ev.target.closest("button");
    if (b) b.blur();
  });

  document.addEventListener("keydown", (ev) => {
    if (ev.target.closest && ev.target.closest("input, textarea")) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const calls = { "1": "left", "2": "right", "3": "simultaneous", "4": "abstain" };
    if (ev.key === " ") togglePlay();
    else if (ev.key === "ArrowLeft") ev.shiftKey ? jumpEvent(-1) : step(-1);
    else if (ev.key === "ArrowRight") ev.shiftKey ? jumpEvent(1) : step(1);
    else if (calls[ev.key]) record(calls[ev.key]);
    else return;
    ev.preventDefault();
  });

  // Sources: the replay in formats a browser plays, full length first.
  function sources(files) {
    const names = new Set(files.map((f) => f.name));
    const out = [];
    const full = ["video.mp4", "video_web.mp4", "video.webm"].find((n) => names.has(n));
    if (full) out.push({ label: "Video", name: full, offset: 0 });
    if (names.has("overlay.mp4")) out.push({ label: "Overlay", name: "overlay.mp4", offset: 0 });
    if (names.has("clip_touch.mp4") && tl) out.push({ label: "Touch clip", name: "clip_touch.mp4", offset: clipOffset() });
    return out;
  }

  // clipOffset is where the touch clip starts in the phrase: 1.5 s before
  // the first hit, as pipeline/motion cuts it.
  function clipOffset() {
    const hit = events.find((e) => e.kind === "hit" || e.kind === "simultaneous_hit");
    if (!hit) return 0;
    return Math.max(0, Math.round((hit.t_s - 1.5) * fps)) / fps;
  }

  function useSource(src, buttons) {
    const at = phraseTime();
    offset = src.offset;
    video.src = base + "/files/" + encodeURIComponent(src.name);
    video.addEventListener("loadedmetadata", () => { if (at > 0) video.currentTime = Math.max(0, at - offset); }, { once: true });
    buttons.forEach((b) => b.classList.toggle("on", b.dataset.name === src.name));
  }

  function showVerdict() {
    const box = document.getElementById("verdict");
    box.replaceChildren();
    const res = detail.result;
    if (detail.status === "failed") {
      box.appendChild(el("h2", "Processing failed"));
      const f = detail.failure || {};
      box.appendChild(el("p", (f.stage ? "At " + f.stage + ": " : "") + (f.reason || ""), "error"));
      return;
    }
    if (!res) {
      box.appendChild(el("h2", "Still " + detail.status));
      box.appendChild(el("p", "The verdict shows here once the phrase is processed.", "muted"));
      return;
    }
    const h = el("h2");
    h.appendChild(document.createTextNode("Verdict: "));
    h.appendChild(el("span", res.winner, "winner " + res.winner));
    box.appendChild(h);
    const dl = el("dl");
    const add = (k, v) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); };
    add("confidence", percent(res.confidence));
    if (tl && tl.decision && tl.decision.rule) add("rule", tl.decision.rule.replace(/_/g, " "));
    add("started", when(res.started_at || detail.started_at));
    add("frames", res.video ? res.video.frames + " at " + res.video.fps + " fps" : "");
    box.appendChild(dl);
    box.appendChild(el("p", res.reason, "reason"));
  }

  function showReview() {
    const box = document.getElementById("review");
    box.replaceChildren();
    const rv = detail.review;
    const winner = detail.result ? detail.result.winner : "";
    document.querySelectorAll(".calls button").forEach((b) => {
      b.classList.toggle("chosen", !!rv && rv.call === b.dataset.call);
      b.classList.toggle("confirm", b.dataset.call === winner);
      b.title = b.dataset.call === winner ? "confirm the analysis' call" : "override the analysis with this call";
    });
    if (!rv) {
      box.appendChild(el("p", "Not reviewed yet.", "muted"));
      return;
    }
    const p = el("p", null, "current");
    p.appendChild(el("strong", rv.call));
    p.appendChild(document.createTextNode(" by " + rv.referee + ", " + when(rv.at)));
    box.appendChild(p);
    if (rv.note) box.appendChild(el("p", "\u201c" + rv.note + "\u201d", "note"));
    if (rv.history && rv.history.length) {
      const ul = el("ul", null, "history");
      rv.history.slice().reverse().forEach((h) => ul.appendChild(el("li", h.call + " by " + h.referee + ", " + when(h.at) + (h.note ? ": " + h.note : ""))));
      box.appendChild(el("p", "Earlier:", "muted"));
      box.appendChild(ul);
    }
  }

  async function record(call) {
    const name = refereeInput.value.trim();
    if (!name) {
      callMsg.textContent = "Give your name first.";
      callMsg.className = "error";
      refereeInput.focus();
      return;
    }
    localStorage.setItem("referee.name", name);
    try {
      detail.review = await api(base + "/review", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ call, referee: name, note: note.value }),
      });
      const winner = detail.result ? detail.result.winner : "";
      callMsg.textContent = (call === winner ? "Confirmed: " : "Recorded: ") + call + ".";
      callMsg.className = "ok";
      note.value = "";
      showReview();
    } catch (e) {
      callMsg.textContent = "Not recorded: " + e.message;
      callMsg.className = "error";
    }
  }
  document.querySelectorAll(".calls button").forEach((b) => b.addEventListener("click", () => record(b.dataset.call)));

  function showEvents() {
    const box = document.getElementById("events");
    box.replaceChildren();
    events.forEach((e) => {
      const b = el("button", e.t_s.toFixed(3) + " s " + eventName(e), "event " + e.kind);
      b.dataset.kind = e.kind;
      b.dataset.frame = e.frame;
      b.style.borderColor = eventColour(e);
      b.addEventListener("click", () => { video.pause(); seekFrame(e.frame); });
      box.appendChild(b);
    });
    const legend = document.getElementById("legend");
    legend.replaceChildren();
    [["left", "left"], ["right", "right"], ["advance", "advance"], ["lunge", "lunge"], ["pause", "pause"], ["retreat", "retreat"], ["blade_contact", "blade contact"], ["lockout_started", "lockout"]].forEach(([k, label]) => {
      const s = el("span", label);
      const sw = el("i");
      sw.style.background = colours[k];
      s.prepend(sw);
      legend.appendChild(s);
    });
  }

  function eventName(e) {
    switch (e.kind) {
      case "hit": return "hit" + (e.light ? " (" + e.light + " light)" : "");
      case "simultaneous_hit": return "second light" + (e.light ? " (" + e.light + ")" : "");
      case "blade_contact": return "blade contact";
      case "lockout_started": return "lockout";
    }
    return e.kind.replace(/_/g, " ");
  }

  function eventColour(e) {
    if (e.kind === "hit" || e.kind === "simultaneous_hit") return e.light ? colours[e.light] : "#fff";
    return colours[e.kind] || "#aaa";
  }

  // draw paints the timeline: both fencers' positions over time, their
  // phases as bands, the events, the decision's hit and the playhead.
  function draw() {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = "#14161a";
    g.fillRect(0, 0, w, h);
    if (!tl || !tl.frames) {
      g.fillStyle = "#999";
      g.font = "13px sans-serif";
      g.fillText(detail && detail.result ? "This analysis has no timeline." : "No timeline yet.", 10, 22);
      return;
    }
    const pad = 8, bandH = 10, top = 14;
    const plotH = h - top - 2 * bandH - 3 * pad;
    const x = (t) => pad + (w - 2 * pad) * Math.min(Math.max(t / (tl.frames / fps), 0), 1);
    const all = [].concat(tl.left.position_m || [], tl.right.position_m || []).filter((v) => v !== null);
    let lo = Math.min(...all), hi = Math.max(...all);
    if (!isFinite(lo)) { lo = 0; hi = 1; }
    if (hi - lo < 0.5) { lo -= 0.25; hi += 0.25; }
    const y = (m) => top + plotH * (1 - (m - lo) / (hi - lo));
    // Phases: one band per fencer under the plot.
    [["left", top + plotH + pad], ["right", top + plotH + pad + bandH + 3]].forEach(([side, by]) => {
      (tl[side].phases || []).forEach((p) => {
        g.fillStyle = colours[p.kind] || "#444";
        g.fillRect(x(p.start_frame / fps), by, Math.max(1, x((p.end_frame + 1) / fps) - x(p.start_frame / fps)), bandH);
      });
      g.fillStyle = colours[side];
      g.fillRect(0, by, 4, bandH);
    });
    // Positions.
    ["left", "right"].forEach((side) => {
      const ps = tl[side].position_m || [];
      g.strokeStyle = colours[side];
      g.lineWidth = 2;
      g.beginPath();
      let pen = false;
      ps.forEach((v, i) => {
        if (v === null) { pen = false; return; }
        const px = x(i / fps), py = y(v);
        if (pen) g.lineTo(px, py); else g.moveTo(px, py);
        pen = true;
      });
      g.stroke();
    });
    // Events, and the hit the decision was taken at.
    g.font = "11px sans-serif";
    events.forEach((e) => {
      g.strokeStyle = eventColour(e);
      g.lineWidth = e.kind === "hit" || e.kind === "simultaneous_hit" ? 3 : 2;
      g.beginPath();
      g.moveTo(x(e.t_s), top);
      g.lineTo(x(e.t_s), top + plotH);
      g.stroke();
    });
    if (tl.decision && tl.decision.hit_s) {
      g.fillStyle = "#fff";
      const hx = x(tl.decision.hit_s);
      g.beginPath();
      g.moveTo(hx - 5, 2); g.lineTo(hx + 5, 2); g.lineTo(hx, 11);
      g.fill();
    }
    // Playhead.
    const px = x(phraseTime());
    g.strokeStyle = "#fff";
    g.lineWidth = 1;
    g.beginPath();
    g.moveTo(px, 0);
    g.lineTo(px, h);
    g.stroke();
  }

  canvas.addEventListener("click", (ev) => {
    if (!tl) return;
    const r = canvas.getBoundingClientRect();
    const f = (ev.clientX - r.left - 8) / (r.width - 16);
    video.pause();
    seekFrame(Math.round(Math.min(Math.max(f, 0), 1) * (tl.frames - 1)));
  });
  window.addEventListener("resize", draw);

  async function load() {
    try {
      detail = await api(base);
    } catch (e) {
      document.getElementById("status").textContent = e.status === 404 ? "no such session" : "error";
      document.getElementById("verdict").replaceChildren(el("p", e.message, "error"));
      return;
    }
    const st = document.getElementById("status");
    st.textContent = detail.status;
    st.className = "status " + detail.status;
    tl = detail.result && detail.result.timeline ? detail.result.timeline : null;
    fps = tl && tl.fps ? tl.fps : detail.result && detail.result.video ? detail.result.video.fps : 30;
    events = tl ? tl.events.filter((e) => ["blade_contact", "hit", "simultaneous_hit", "lockout_started"].includes(e.kind)) : [];
    showVerdict();
    showReview();
    showEvents();
    const srcs = sources(detail.files);
    const box = document.getElementById("sources");
    box.replaceChildren();
    const buttons = srcs.map((s) => {
      const b = el("button", s.label);
      b.dataset.name = s.name;
      b.addEventListener("click", () => useSource(s, buttons));
      box.appendChild(b);
      return b;
    });
    document.getElementById("novideo").hidden = srcs.length > 0 || detail.status !== "done";
    video.hidden = srcs.length === 0;
    if (srcs.length) useSource(srcs[0], buttons);
    draw();
    if (detail.status === "streaming" || detail.status === "processing") setTimeout(load, 1000);
  }
  load();
})();
