// The feedback app's browser side (served as /app.js; the CSP allows no inline script). Model text arrives
// as HTML the server sanitised (markdown-it, raw HTML escaped) or as plain text put in with textContent.
// Every task is keyboard-first: the keys are listed under each task.
'use strict';

const main = document.getElementById('main');
const statusLine = document.getElementById('status');
let csrf = null;
let onKey = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (k === 'html') e.innerHTML = v; // only server-sanitised markdown reaches here
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

async function api(method, path, body) {
  if (!csrf && method !== 'GET') csrf = (await (await fetch('/api/csrf')).json()).token;
  const headers = method === 'GET' ? {} : { 'content-type': 'application/json', 'x-csrf-token': csrf };
  const res = await fetch(path, { method, headers, body: method === 'GET' ? undefined : JSON.stringify(body ?? {}) });
  const text = await res.text();
  const data = (res.headers.get('content-type') || '').includes('json') && text ? JSON.parse(text) : text;
  if (!res.ok) throw Object.assign(new Error((data && data.error) || `HTTP ${res.status}`), { status: res.status });
  return data;
}

// What the page shows, for tests and assistive tools: home, admin, item-<id>, done, paused, signin.
function state(s) {
  main.dataset.state = s;
}

function say(message) {
  statusLine.textContent = message || '';
}

document.addEventListener('keydown', (ev) => {
  if (onKey) onKey(ev);
});

function form(fields, submitText, submit) {
  const f = el('form');
  for (const [name, label, type] of fields) f.append(el('label', { text: label }, el('input', { name, type: type || 'text', 'aria-label': label })));
  f.append(el('button', { type: 'submit', text: submitText }));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const values = Object.fromEntries(new FormData(f).entries());
    try {
      await submit(values);
    } catch (e) {
      say(e.message);
    }
  });
  return f;
}

async function start() {
  onKey = null;
  const invite = new URLSearchParams(location.search).get('invite');
  if (invite) {
    main.replaceChildren(el('h2', { text: 'Welcome' }), form([['name', 'Your name'], ['password', 'Password (optional, 8+ characters)', 'password']], 'Join', async (v) => {
      await api('POST', '/api/redeem', { token: invite, name: v.name, password: v.password });
      history.replaceState(null, '', '/');
      await start();
    }));
    main.querySelector('input').focus();
    state('signin');
    return;
  }
  let me;
  try {
    me = await api('GET', '/api/me');
  } catch (e) {
    if (e.status !== 401) throw e;
    main.replaceChildren(el('h2', { text: 'Sign in' }), el('p', { text: 'Use your invite link, or your name and password.' }),
      form([['name', 'Name'], ['password', 'Password', 'password']], 'Sign in', async (v) => {
        await api('POST', '/api/login', v);
        await start();
      }));
    main.querySelector('input').focus();
    state('signin');
    return;
  }
  document.getElementById('who').textContent = `${me.name} (${me.role})`;
  home(me);
}

function home(me) {
  const list = el('ol');
  me.projects.forEach((p, i) => list.append(el('li', {}, el('a', { href: '#', 'data-project': p.name, text: `${p.name} — ${p.task}`, onclick: (ev) => { ev.preventDefault(); annotate(p.name); } }))));
  main.replaceChildren(el('h2', { text: 'Projects' }), list, el('p', { class: 'keys', text: 'Keys: 1–9 open a project' + (me.role === 'admin' ? '; a opens the admin view' : '') }));
  state('home');
  onKey = (ev) => {
    if (ev.target.tagName === 'INPUT' || ev.target.tagName === 'TEXTAREA') return;
    const n = Number(ev.key);
    if (n >= 1 && n <= me.projects.length) annotate(me.projects[n - 1].name);
    else if (ev.key === 'a' && me.role === 'admin') admin(me);
  };
}

// ——— annotation ———

async function annotate(project) {
  say('');
  const next = await api('GET', `/api/projects/${encodeURIComponent(project)}/next`);
  if (next.kind !== 'item') {
    main.replaceChildren(el('h2', { text: next.kind === 'paused' ? 'Paused' : 'All done' }),
      el('p', { text: next.kind === 'paused' ? 'Your account is paused: please speak to the project admin.' : 'No more items for you in this project. Thank you!' }),
      el('p', { class: 'keys', text: 'Keys: h home' }));
    onKey = (ev) => { if (ev.key === 'h') start(); };
    state(next.kind);
    return;
  }
  const a = next.assignment;
  const task = TASKS[a.task];
  const view = task.render(a);
  const critique = a.task === 'critique' ? null : el('textarea', { id: 'critique', placeholder: 'Optional critique (c to focus, Esc to leave)', 'aria-label': 'critique' });
  main.replaceChildren(
    el('p', { class: 'keys', text: `${project} · ${a.task} · guidelines v${a.guidelines.version}: ${a.guidelines.text}` }),
    el('div', { class: 'prompt', html: a.promptHtml }), view.node, critique,
    el('p', { class: 'keys', text: `Keys: ${task.keys(a)}; ${critique ? 'c critique; ' : ''}h home; Ctrl+Enter (or Enter outside a text box) submits` }),
  );
  const submit = async () => {
    const answer = view.answer();
    if (critique && critique.value.trim()) answer.critique = critique.value;
    try {
      await api('POST', `/api/assignments/${a.id}/label`, { answer });
      await annotate(project);
    } catch (e) {
      say(e.message);
    }
  };
  onKey = (ev) => {
    const inText = ev.target.tagName === 'TEXTAREA' || ev.target.tagName === 'INPUT';
    if (ev.key === 'Enter' && (ev.ctrlKey || !inText)) { ev.preventDefault(); submit(); return; }
    if (ev.key === 'Escape' && inText) { ev.target.blur(); return; }
    if (inText) return;
    if (ev.key === 'c' && critique) { ev.preventDefault(); critique.focus(); return; }
    if (ev.key === 'h') { start(); return; } // the item stays leased to you: it comes back first
    view.key(ev);
  };
  if (view.focus) view.focus();
  state(`item-${a.id}`);
}

function responseCards(a, label) {
  const cards = a.responses.map((r, i) => el('div', { class: 'response' }, el('h3', { text: label(i) }), el('div', { html: r.html })));
  return { cards, node: el('div', { class: 'responses' }, ...cards) };
}

function scale(values, current, name) {
  return el('div', { class: 'scale', 'aria-label': name }, ...values.map((v) => el('span', { class: v.value === current ? 'on' : '', text: v.label })));
}

const TASKS = {
  pairwise: {
    keys: (a) => `←/→ move the strength, 1–${2 * a.settings.strengthMax + 1} set it (middle = tie), b both bad, x can't judge`,
    render(a) {
      const m = a.settings.strengthMax;
      const state = { strength: 0, bothBad: false, cantJudge: false };
      const { node } = responseCards(a, (i) => (i === 0 ? 'Left (A)' : 'Right (B)'));
      const bar = el('div');
      const draw = () => {
        const values = Array.from({ length: 2 * m + 1 }, (_, i) => ({ value: i - m, label: i - m < 0 ? `A +${m - i}` : i - m > 0 ? `B +${i - m}` : 'tie' }));
        bar.replaceChildren(scale(values, state.strength, 'strength'),
          el('div', { class: 'scale' }, el('span', { class: `flag ${state.bothBad ? 'on' : ''}`, text: 'both bad (b)' }), el('span', { class: `flag ${state.cantJudge ? 'on' : ''}`, text: "can't judge (x)" })));
      };
      draw();
      return {
        node: el('div', {}, node, bar),
        answer: () => ({ ...state }),
        key(ev) {
          const n = Number(ev.key);
          if (ev.key === 'ArrowLeft') state.strength = Math.max(-m, state.strength - 1);
          else if (ev.key === 'ArrowRight') state.strength = Math.min(m, state.strength + 1);
          else if (n >= 1 && n <= 2 * m + 1) state.strength = n - 1 - m;
          else if (ev.key === 'b') state.bothBad = !state.bothBad;
          else if (ev.key === 'x') state.cantJudge = !state.cantJudge;
          else return;
          ev.preventDefault();
          draw();
        },
      };
    },
  },
  ranking: {
    keys: (a) => `1–${a.responses.length} pick a response, ↑/↓ move its rank (equal ranks are ties); or drag a response onto another to take its place`,
    render(a) {
      const k = a.responses.length;
      const ranks = a.responses.map((_, i) => i + 1);
      let sel = 0;
      const { cards, node } = responseCards(a, (i) => `Response ${i + 1}`);
      const draw = () => cards.forEach((c, i) => {
        c.classList.toggle('selected', i === sel);
        c.querySelector('h3').textContent = `Response ${i + 1} — rank ${ranks[i]}`;
      });
      // Drag: the dragged response takes the target's place in the order (best first), the others close up;
      // ranks become 1..K (a drag breaks ties; the keys make them).
      cards.forEach((c, i) => {
        c.setAttribute('draggable', 'true');
        c.addEventListener('dragstart', (ev) => ev.dataTransfer.setData('text/plain', String(i)));
        c.addEventListener('dragover', (ev) => ev.preventDefault());
        c.addEventListener('drop', (ev) => {
          ev.preventDefault();
          const from = Number(ev.dataTransfer.getData('text/plain'));
          const order = ranks.map((r, j) => [r, j]).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map(([, j]) => j).filter((j) => j !== from);
          order.splice(order.indexOf(i) + (ranks[from] < ranks[i] ? 1 : 0), 0, from);
          order.forEach((j, pos) => (ranks[j] = pos + 1));
          sel = from;
          draw();
        });
      });
      draw();
      return {
        node,
        answer: () => ({ ranks: [...ranks] }),
        key(ev) {
          const n = Number(ev.key);
          if (n >= 1 && n <= k) sel = n - 1;
          else if (ev.key === 'ArrowUp') ranks[sel] = Math.max(1, ranks[sel] - 1);
          else if (ev.key === 'ArrowDown') ranks[sel] = Math.min(k, ranks[sel] + 1);
          else return;
          ev.preventDefault();
          draw();
        },
      };
    },
  },
  rating: {
    keys: (a) => `↑/↓ pick an axis, ${a.settings.scaleMin}–${a.settings.scaleMax} score it, u thumbs up, d thumbs down`,
    render(a) {
      const { axes, scaleMin, scaleMax } = a.settings;
      const mid = Math.round((scaleMin + scaleMax) / 2);
      const state = { scores: Object.fromEntries(axes.map((x) => [x, mid])), thumb: null };
      let sel = 0;
      const { node } = responseCards(a, () => 'Response');
      const box = el('div');
      const values = Array.from({ length: scaleMax - scaleMin + 1 }, (_, i) => ({ value: scaleMin + i, label: String(scaleMin + i) }));
      const draw = () => box.replaceChildren(...axes.map((x, i) => el('div', { class: i === sel ? 'response selected' : 'response' }, el('h3', { text: x }), scale(values, state.scores[x], x))),
        el('div', { class: 'scale' }, el('span', { class: state.thumb === 'up' ? 'on' : '', text: '👍 (u)' }), el('span', { class: state.thumb === 'down' ? 'on' : '', text: '👎 (d)' })));
      draw();
      return {
        node: el('div', {}, node, box),
        answer: () => ({ scores: { ...state.scores }, thumb: state.thumb }),
        key(ev) {
          const n = Number(ev.key);
          if (ev.key === 'ArrowUp') sel = Math.max(0, sel - 1);
          else if (ev.key === 'ArrowDown') sel = Math.min(axes.length - 1, sel + 1);
          else if (ev.key !== ' ' && n >= scaleMin && n <= scaleMax) state.scores[axes[sel]] = n;
          else if (ev.key === 'u') state.thumb = state.thumb === 'up' ? null : 'up';
          else if (ev.key === 'd') state.thumb = state.thumb === 'down' ? null : 'down';
          else return;
          ev.preventDefault();
          draw();
        },
      };
    },
  },
  correction: {
    keys: () => 'edit the response in the box (it has the focus), Esc leaves it, e returns to it',
    render(a) {
      const { node } = responseCards(a, () => 'Response');
      const box = el('textarea', { class: 'edit', 'aria-label': 'corrected response' });
      box.value = a.responses[0].text;
      return { node: el('div', {}, node, box), answer: () => ({ text: box.value }), key(ev) { if (ev.key === 'e') { ev.preventDefault(); box.focus(); } }, focus: () => box.focus() };
    },
  },
  critique: {
    keys: () => 'write the critique in the box (it has the focus), Esc leaves it, e returns to it',
    render(a) {
      const { node } = responseCards(a, (i) => `Response ${i + 1}`);
      const box = el('textarea', { class: 'edit', 'aria-label': 'critique text' });
      return { node: el('div', {}, node, box), answer: () => ({ text: box.value }), key(ev) { if (ev.key === 'e') { ev.preventDefault(); box.focus(); } }, focus: () => box.focus() };
    },
  },
  spans: {
    keys: () => '←/→ move over words, Shift+←/→ extend the selection, g mark good, b mark bad, u unmark',
    render(a) {
      const text = a.responses[0].text;
      const words = [...text.matchAll(/\S+/g)].map((m) => ({ start: m.index, end: m.index + m[0].length, mark: 0 }));
      let cursor = 0;
      let anchor = 0;
      const toks = words.map((w) => el('span', { class: 'tok', text: w.start === 0 ? text.slice(0, w.end) : text.slice(w.start, w.end) }));
      const body = el('div', { class: 'response' }, el('h3', { text: 'Response (plain text)' }));
      toks.forEach((t, i) => body.append(t, i < toks.length - 1 ? ' ' : ''));
      const draw = () => {
        const [lo, hi] = [Math.min(anchor, cursor), Math.max(anchor, cursor)];
        toks.forEach((t, i) => (t.className = `tok${i === cursor ? ' cursor' : ''}${i >= lo && i <= hi ? ' sel' : ''}${words[i].mark > 0 ? ' good' : words[i].mark < 0 ? ' bad' : ''}`));
      };
      draw();
      const spans = () => {
        const out = [];
        words.forEach((w, i) => {
          if (!w.mark) return;
          const last = out[out.length - 1];
          if (last && last.polarity === w.mark && words[i - 1].mark === w.mark) last.end = w.end;
          else out.push({ start: w.start, end: w.end, polarity: w.mark });
        });
        return out;
      };
      return {
        node: el('div', { class: 'responses' }, body),
        answer: () => ({ spans: spans() }),
        key(ev) {
          if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
            cursor = Math.max(0, Math.min(words.length - 1, cursor + (ev.key === 'ArrowLeft' ? -1 : 1)));
            if (!ev.shiftKey) anchor = cursor;
          } else if (ev.key === 'g' || ev.key === 'b' || ev.key === 'u') {
            for (let i = Math.min(anchor, cursor); i <= Math.max(anchor, cursor); i++) words[i].mark = ev.key === 'g' ? 1 : ev.key === 'b' ? -1 : 0;
          } else return;
          ev.preventDefault();
          draw();
        },
      };
    },
  },
};

// ——— admin ———

function table(headers, rows) {
  return el('table', {}, el('tr', {}, ...headers.map((h) => el('th', { text: h }))), ...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', { text: c === null || c === undefined ? '–' : typeof c === 'number' ? String(Math.round(c * 1000) / 1000) : String(c) })))));
}

async function admin(me) {
  onKey = (ev) => { if (ev.key === 'h' && ev.target.tagName !== 'INPUT' && ev.target.tagName !== 'TEXTAREA') start(); };
  const sections = [];
  for (const p of me.projects) {
    const s = await api('GET', `/api/admin/projects/${encodeURIComponent(p.name)}/stats`);
    const g = s.progress;
    sections.push(el('section', { 'data-project': p.name }, el('h3', { text: `${p.name} (${p.task}, overlap ${s.project.overlap})` }),
      table(['items', 'gold items', 'labels', 'complete items', 'leased'], [[g.items, g.goldItems, g.labels, g.complete, g.leased]]),
      table(['annotator', 'labels', 'gold accuracy', 'gold n', 'weight', 'median time (s)', 'left-choice rate', 'tie rate', 'longer chosen', 'both bad', "can't judge"],
        s.annotators.map((a) => [a.annotator, a.labels, a.goldAccuracy, a.goldN, a.weight, a.medianTimeMs / 1000, a.leftChoiceRate, a.tieRate, a.longerChosenRate, a.bothBadRate, a.cantJudgeRate])),
      table(["Fleiss' κ", 'items', "Krippendorff's α (ordinal)", 'pairable values'], [[s.agreement.fleiss, s.agreement.fleissItems, s.agreement.alphaOrdinal, s.agreement.pairable]]),
      table(["Cohen's κ: annotators", 'κ', 'common items'], s.agreement.cohen.map((c) => [`${c.a} · ${c.b}`, c.kappa, c.items])),
      p.task === 'pairwise' ? rewardModelRow(p.name, s.rewardModel) : null,
      el('p', {}, ...['raw', 'trl', 'kto', 'ranking', 'rating', 'spans'].flatMap((f) => [el('a', { href: `/api/admin/projects/${encodeURIComponent(p.name)}/export?format=${f}`, text: `export ${f}` }), ' '])),
      importForm(p.name)));
  }
  const create = form([['name', 'Project name'], ['task', 'Task type (pairwise, ranking, rating, correction, critique, spans)'], ['overlap', 'Overlap', 'number'], ['guidelines', 'Guidelines']], 'Create project', async (v) => {
    await api('POST', '/api/admin/projects', { name: v.name, task: v.task, overlap: v.overlap ? Number(v.overlap) : undefined, guidelines: v.guidelines || undefined });
    await start();
  });
  const inviteOut = el('p', { id: 'invite-link' });
  const invite = el('button', { text: 'New annotator invite', onclick: async () => { const r = await api('POST', '/api/admin/invites', { role: 'annotator' }); inviteOut.textContent = location.origin + r.path; } });
  main.replaceChildren(el('h2', { text: 'Admin' }), el('p', { class: 'keys', text: 'Keys: h home' }), ...sections, el('h3', { text: 'New project' }), create, invite, inviteOut);
  state('admin');
}

function rewardModelRow(project, rm) {
  const t = table(['reward model on the labels so far', 'labels', 'held-out accuracy', 'held-out pairs'],
    [[rm ? rm.state + (rm.error ? `: ${rm.error}` : '') : 'not trained yet', rm && rm.labels, rm && rm.accuracy, rm && rm.heldOutPairs]]);
  const button = el('button', { class: 'train-rm', text: 'Train reward model', onclick: async () => {
    try {
      await api('POST', `/api/admin/projects/${encodeURIComponent(project)}/reward-check`);
      say('training a reward model on the labels so far; reopen the admin view (h, a) for its accuracy');
    } catch (e) {
      say(e.message);
    }
  } });
  return el('div', { class: 'reward-model' }, t, button);
}

function importForm(project) {
  const box = el('textarea', { 'aria-label': `items for ${project} (JSON Lines)`, placeholder: '{"prompt": "…", "responses": ["…", "…"]}' });
  const button = el('button', { class: 'import', text: 'Import items', onclick: async () => {
    try {
      const r = await api('POST', `/api/admin/projects/${encodeURIComponent(project)}/items`, { jsonl: box.value, name: 'upload.jsonl' });
      say(`imported ${r.items} items (${r.gold} gold)`);
    } catch (e) {
      say(e.message);
    }
  } });
  return el('div', {}, box, button);
}

start().catch((e) => say(e.message));
