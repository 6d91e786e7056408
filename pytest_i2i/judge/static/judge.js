// The judging page: plain JavaScript, no build step, no third-party code. Talks to /api/* only.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const state = { study: null, rater: null, slot: null, busy: true, shownAt: 0, values: [], panels: 1, context: false };
  const LABELS = { left: "Left", right: "Right", cant_tell: "Can't tell", tie: "About the same", both_bad: "Both bad" };
  const HINTS = { left: "←", right: "→", cant_tell: "↓", tie: "↓", both_bad: "B" };
  const KEYS = {
    ArrowLeft: "left", a: "left", 1: "left",
    ArrowRight: "right", l: "right", 2: "right",
    ArrowDown: "unsure", " ": "unsure", 3: "unsure",
    b: "both_bad", 4: "both_bad",
  };
  const MIN_VIEW_MS = 200; // ignore keys this soon after a new item appears (a key still held from the last one)

  const storageKey = () => "i2i-judge-rater:" + state.study.name;

  async function api(path, options) {
    const res = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
    let data;
    try {
      data = await res.json();
    } catch (e) {
      data = { error: "the server answered " + res.status + " without details" };
    }
    return { ok: res.ok, status: res.status, data };
  }

  function message(text, ok) {
    const m = $("message");
    if (!text) {
      m.hidden = true;
      return;
    }
    m.textContent = text;
    m.className = "message" + (ok ? " ok" : "");
    m.hidden = false;
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function kbd(text) {
    return el("kbd", null, text);
  }

  // -- answers ------------------------------------------------------------------------------------
  function scaleValues(s) {
    const n = Math.round((s.max - s.min) / s.step);
    const out = [];
    for (let i = 0; i <= n; i++) out.push(+(s.min + i * s.step).toFixed(10));
    return out;
  }

  function buildAnswers() {
    const box = $("answers");
    box.textContent = "";
    const study = state.study;
    if (study.kind === "rating") {
      state.values = scaleValues(study.scale);
      state.values.forEach((v, i) => {
        const b = el("button", "scale");
        b.type = "button";
        b.dataset.answer = String(v);
        b.append(el("span", "value", String(v)));
        const label = study.scale.labels[String(v)] || study.scale.labels[v.toFixed(1)];
        if (label) b.append(el("span", "text", label));
        if (i < 10) b.append(kbd(i === 9 ? "0" : String(i + 1)));
        b.addEventListener("click", () => answer(v, b));
        box.append(b);
      });
      return;
    }
    const order = ["left", ...study.answers.filter((a) => a !== "left" && a !== "right"), "right"];
    for (const a of order) {
      const b = el("button");
      b.type = "button";
      b.dataset.answer = a;
      b.append(LABELS[a] + " ", kbd(HINTS[a]));
      b.addEventListener("click", () => answer(a, b));
      box.append(b);
    }
  }

  function buildKeyHelp() {
    const f = $("keys");
    f.textContent = "";
    const add = (keys, text) => {
      const s = el("span");
      keys.forEach((k) => s.append(kbd(k), " "));
      s.append(text);
      f.append(s);
    };
    if (state.study.kind === "rating") {
      add(["1", "…", state.values.length >= 10 ? "0" : String(Math.min(state.values.length, 9))], "score");
    } else {
      add(["←", "A", "1"], "left");
      add(["→", "L", "2"], "right");
      const unsure = state.study.answers.includes("cant_tell") ? "cant_tell" : "tie";
      add(["↓", "Space", "3"], LABELS[unsure].toLowerCase());
      if (state.study.answers.includes("both_bad")) add(["B", "4"], "both bad");
    }
    add(["Z"], "actual pixels / fit");
    f.append(el("span", null, "Answers are final and saved as you go."));
  }

  function setButtons(enabled) {
    for (const b of $("answers").querySelectorAll("button")) {
      b.disabled = !enabled;
      if (enabled) b.classList.remove("pressed");
    }
  }

  // -- showing an item ----------------------------------------------------------------------------
  function panel(url, label, cls, hint) {
    const p = el("div", "panel " + cls);
    const img = new Image();
    img.alt = label;
    img.src = url;
    img.draggable = false;
    const lab = el("div", "label", label);
    if (hint) lab.append(kbd(hint));
    p.append(img, lab);
    return { node: p, img };
  }

  function sizeImages() {
    if (!state.study) return;
    const w = window.innerWidth;
    const h = window.innerHeight;
    let size;
    const kind = state.study.kind;
    if (kind === "2afc") size = Math.min(440, (w - 140) / 3, h - 290);
    else if (kind === "pairwise") size = Math.min(520, (w - 160) / (state.context ? 2.5 : 2), h - 300);
    else size = Math.min(560, (w - 60) / state.panels - 40, h - 300);
    document.documentElement.style.setProperty("--img-size", Math.max(120, Math.floor(size)) + "px");
  }

  async function show(slot) {
    const study = state.study;
    const im = slot.images;
    const stage = el("div", "stage kind-" + study.kind);
    stage.id = "stage";
    stage.dataset.task = slot.task;
    stage.dataset.occurrence = String(slot.occurrence);
    const imgs = [];
    const add = (parent, p) => {
      parent.append(p.node);
      imgs.push(p.img);
      return p.node;
    };
    const choice = (side) => {
      const p = panel(im[side], LABELS[side], "choice", HINTS[side]);
      p.node.dataset.side = side;
      p.node.addEventListener("click", () => answer(side));
      return p;
    };
    if (study.kind === "2afc") {
      add(stage, choice("left"));
      add(stage, panel(im.reference, "Reference", "context"));
      add(stage, choice("right"));
    } else if (study.kind === "pairwise") {
      const side = el("div", "column");
      if (im.input) add(side, panel(im.input, "Input", "context small"));
      if (im.reference) add(side, panel(im.reference, "Target", "context small"));
      stage.append(side);
      add(stage, choice("left"));
      add(stage, choice("right"));
    } else {
      if (im.input) add(stage, panel(im.input, "Input", "context"));
      if (im.reference) add(stage, panel(im.reference, "Reference", "context"));
      add(stage, panel(im.image, "Rate this image", "rated"));
    }
    state.panels = imgs.length;
    state.context = Boolean(im.input || im.reference);
    sizeImages();
    await Promise.all(imgs.map((i) => i.decode().catch(() => null)));
    const broken = imgs.filter((i) => !i.naturalWidth);
    $("stage").replaceWith(stage);
    const ins = $("instruction");
    ins.hidden = !slot.instruction;
    ins.textContent = "";
    if (slot.instruction) ins.append(el("b", null, "Instruction"), slot.instruction);
    state.slot = slot;
    $("judge").hidden = false;
    $("keys").hidden = false;
    $("done").hidden = true;
    if (broken.length) {
      message("An image of this item could not be loaded; reload the page, or tell the study's organiser.");
      state.busy = true;
      setButtons(false);
      return;
    }
    state.shownAt = performance.now();
    state.busy = false;
    setButtons(true);
  }

  function progress(done, total) {
    $("progress").hidden = false;
    $("progress-fill").style.width = (total ? (100 * done) / total : 0) + "%";
    $("progress-text").textContent = done + " / " + total;
  }

  function saved() {
    const s = $("saved");
    s.classList.remove("show");
    void s.offsetWidth; // restart the fade
    s.classList.add("show");
  }

  function prefetch(urls) {
    for (const u of urls || []) {
      const i = new Image();
      i.src = u;
    }
  }

  function update(data) {
    progress(data.done, data.total);
    prefetch(data.prefetch);
    if (data.finished) {
      state.slot = null;
      state.busy = true;
      $("judge").hidden = true;
      $("keys").hidden = true;
      $("done").hidden = false;
      $("done-text").textContent = "You made all " + data.total + " judgments of this study.";
      return Promise.resolve();
    }
    return show(data.slot);
  }

  // -- answering ----------------------------------------------------------------------------------
  async function answer(a, button) {
    if (state.busy || !state.slot) return;
    if (performance.now() - state.shownAt < MIN_VIEW_MS) return;
    state.busy = true;
    setButtons(false);
    const btn = button || $("answers").querySelector('[data-answer="' + a + '"]');
    if (btn) btn.classList.add("pressed");
    const side = document.querySelector('.panel[data-side="' + a + '"]');
    if (side) side.classList.add("chosen");
    const body = { rater: state.rater, task: state.slot.task, occurrence: state.slot.occurrence, answer: a };
    let r;
    try {
      r = await api("/api/judgments", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    } catch (e) {
      r = null;
    }
    if (r && r.ok) {
      message("");
      saved();
      return update(r.data);
    }
    if (side) side.classList.remove("chosen");
    if (r && r.status === 409) {
      message(r.data.error + "; moving on.", true);
      return start(state.rater);
    }
    message(r ? "Not saved: " + r.data.error
              : "Not saved: the server cannot be reached. Answer again once it is back.");
    state.busy = false;
    setButtons(true);
  }

  function onKey(e) {
    if (e.target && e.target.tagName === "INPUT") return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    const study = state.study;
    if (!study) return;
    if (e.key === "z" || e.key === "Z") {
      document.body.classList.toggle("actual-size");
      e.preventDefault();
      return;
    }
    if (!state.slot) return;
    if (study.kind === "rating") {
      if (!/^[0-9]$/.test(e.key)) return;
      const i = e.key === "0" ? 9 : Number(e.key) - 1;
      if (i < state.values.length) {
        e.preventDefault();
        const v = state.values[i];
        answer(v, $("answers").querySelector('[data-answer="' + String(v) + '"]'));
      }
      return;
    }
    let a = KEYS[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!a) return;
    if (a === "unsure") a = study.answers.includes("cant_tell") ? "cant_tell" : "tie";
    if (!study.answers.includes(a)) return;
    e.preventDefault();
    answer(a);
  }

  // -- raters -------------------------------------------------------------------------------------
  function showLogin(error) {
    $("judge").hidden = true;
    $("done").hidden = true;
    $("who").hidden = true;
    $("keys").hidden = true;
    $("login").hidden = false;
    $("login-error").textContent = error || "";
    $("rater-input").focus();
  }

  async function start(rater) {
    const r = await api("/api/next?rater=" + encodeURIComponent(rater));
    if (!r.ok) {
      localStorage.removeItem(storageKey());
      showLogin(r.data.error);
      return;
    }
    state.rater = rater;
    localStorage.setItem(storageKey(), rater);
    $("login").hidden = true;
    $("rater-name").textContent = rater;
    $("who").hidden = false;
    await update(r.data);
  }

  async function init() {
    let r;
    try {
      r = await api("/api/study");
    } catch (e) {
      message("The judging server cannot be reached.");
      return;
    }
    if (!r.ok) {
      message(r.data.error);
      return;
    }
    state.study = r.data;
    $("study-name").textContent = r.data.name;
    document.title = r.data.name + " · i2i judge";
    $("question").textContent = r.data.question;
    buildAnswers();
    buildKeyHelp();
    sizeImages();
    const saved = localStorage.getItem(storageKey());
    if (saved) await start(saved);
    else showLogin();
  }

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("rater-input").value.trim();
    if (name) start(name);
  });
  $("switch").addEventListener("click", () => {
    localStorage.removeItem(storageKey());
    state.slot = null;
    state.busy = true;
    $("rater-input").value = "";
    showLogin();
  });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", sizeImages);
  init();
})();
