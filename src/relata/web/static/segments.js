// relata segment builder: nested groups of conditions picked from lists, kept in step with
// the rule's text form (the textarea the form posts) and counted live through
// POST /v1/rules/check?count=true. Without JavaScript the textarea alone does the job.
// Every element is built with createElement/textContent: nothing a user typed becomes HTML.
"use strict";

(() => {
  const catalogueNode = document.getElementById("rule-catalogue");
  if (!catalogueNode) return;
  const C = JSON.parse(catalogueNode.textContent);
  const initial = JSON.parse(document.getElementById("rule-initial").textContent);
  const textarea = document.getElementById("rule-text");
  const status = document.getElementById("rule-status");
  const box = document.getElementById("builder-box");
  const mount = document.getElementById("builder");
  const form = document.getElementById("segment-form");
  const L = (key) => (C.labels[key] !== undefined ? C.labels[key] : key);
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");
  const fields = new Map(C.fields.map((f) => [f.name, f]));
  const collections = new Map(C.collections.map((c) => [c.name, c]));
  const numbers = new Intl.NumberFormat(C.number_format === "de" ? "de-DE" : "en-GB");
  const today = new Date().toISOString().slice(0, 10);

  // --- the model: the rule's JSON form <-> items the builder edits ------------------------

  function fromJSON(node, negated = false) {
    if (node && node.not !== undefined) return fromJSON(node.not, !negated);
    if (node && (node.and || node.or)) {
      const op = node.and ? "and" : "or";
      return { kind: "group", op, negated, items: node[op].map((n) => fromJSON(n)) };
    }
    if (node && node.agg) {
      return { kind: "agg", negated, func: node.agg, field: node.field ?? null,
               source: sourceFrom(node.of), op: node.op, value: node.value };
    }
    if (node && node.has) return { kind: "has", negated, source: sourceFrom(node.has) };
    if (node && node.segment !== undefined) return { kind: "segment", negated, name: node.segment };
    return { kind: "cond", negated, field: node.field, op: node.op, value: node.value };
  }

  function sourceFrom(s) {
    const where = s.where ? fromJSON(s.where) : null;
    return { collection: s.collection, name: s.name ?? null, window: s.window ?? null,
             where: where && where.kind !== "group" ? group("and", [where]) : where };
  }

  function group(op, items) {
    return { kind: "group", op, negated: false, items };
  }

  function toJSON(item) {
    let node;
    if (item.kind === "group") {
      const parts = item.items.map(toJSON).filter((p) => p !== null);
      if (parts.length === 0) return null;
      node = parts.length === 1 ? parts[0] : { [item.op]: parts };
    } else if (item.kind === "cond") {
      node = { field: item.field, op: item.op };
      if (!item.op.startsWith("is ")) node.value = item.value;
    } else if (item.kind === "has") {
      node = { has: sourceJSON(item.source) };
    } else if (item.kind === "agg") {
      node = { agg: item.func };
      if (item.func !== "count") node.field = item.field;
      Object.assign(node, { of: sourceJSON(item.source), op: item.op, value: item.value });
    } else {
      node = { segment: item.name };
    }
    return item.negated ? { not: node } : node;
  }

  function sourceJSON(s) {
    const out = { collection: s.collection };
    if (s.name) out.name = s.name;
    const where = s.where ? toJSON(s.where) : null;
    if (where) out.where = where;
    if (s.window) out.window = s.window;
    return out;
  }

  // --- small DOM helpers ------------------------------------------------------------------

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // options: [[value, label], ...] or [[groupLabel, [[value, label], ...]], ...]
  function select(options, value, onChange, label) {
    const node = el("select", { "aria-label": label });
    const add = (parent, [v, text]) => {
      const option = el("option", { value: v, text });
      if (String(v) === String(value)) option.selected = true;
      parent.append(option);
    };
    for (const entry of options) {
      if (Array.isArray(entry[1])) {
        const optgroup = el("optgroup", { label: entry[0] });
        entry[1].forEach((o) => add(optgroup, o));
        node.append(optgroup);
      } else add(node, entry);
    }
    node.addEventListener("change", () => onChange(node.value));
    return node;
  }

  function input(attrs, onInput) {
    const node = el("input", attrs);
    node.addEventListener("input", () => onInput(node.value));
    return node;
  }

  function button(text, onClick, cls = "rule-link") {
    return el("button", { type: "button", class: cls, text, onclick: onClick });
  }

  // --- rendering ----------------------------------------------------------------------------

  let rootItem = group("and", []);

  function changed() {
    render();
    schedule({ rule_json: toJSON(rootItem) }, false);
  }

  function render() {
    mount.replaceChildren(renderGroup(rootItem, null, null));
  }

  function renderGroup(item, scope, onRemove) {
    const list = el("ul", { class: "rule-items" });
    item.items.forEach((child, i) => {
      const remove = () => { item.items.splice(i, 1); changed(); };
      list.append(el("li", {}, renderItem(child, scope, remove)));
    });
    const head = el("div", { class: "rule-group-head" },
      negation(item),
      select([["and", L("rules.all")], ["or", L("rules.any")]], item.op,
             (v) => { item.op = v; changed(); }, L("rules.match")),
      onRemove ? button(L("rules.remove"), onRemove) : null);
    const add = el("div", { class: "rule-add" },
      button(`+ ${scope ? L("rules.add_filter") : L("rules.add")}`,
             () => { item.items.push(defaultItem(scope)); changed(); }, "rule-secondary"),
      button(`+ ${L("rules.add_group")}`,
             () => { item.items.push(group("and", [defaultItem(scope)])); changed(); }, "rule-secondary"));
    return el("div", { class: "rule-group" }, head, list, add);
  }

  function negation(item) {
    const box = el("input", { type: "checkbox" });
    box.checked = item.negated;
    box.addEventListener("change", () => { item.negated = box.checked; changed(); });
    return el("label", { class: "rule-not" }, box, ` ${L("rules.not")}`);
  }

  function renderItem(item, scope, onRemove) {
    if (item.kind === "group") return renderGroup(item, scope, onRemove);
    const row = el("div", { class: "rule-row" }, negation(item), chooser(item, scope));
    if (item.kind === "cond") condEditors(item, scope).forEach((n) => row.append(n));
    if (item.kind === "segment") {
      row.append(select(C.segments.map((s) => [s, s]), item.name,
                        (v) => { item.name = v; changed(); }, L("rules.in_segment")));
    }
    row.append(button(L("rules.remove"), onRemove));
    if (item.kind === "has" || item.kind === "agg") {
      return el("div", { class: "rule-source" }, row, sourceEditors(item));
    }
    return row;
  }

  // The first list of a row: every field, then behaviour (has/count/sum over collections).
  function chooser(item, scope) {
    const current = item.kind === "cond"
      ? (item.field.startsWith("properties.") ? "property" : `f:${item.field}`)
      : item.kind === "segment" ? "segment" : `${item.kind === "has" ? "has" : item.func}:${item.source.collection}`;
    let options;
    if (scope) {
      options = scope.fields.map((f) => [`f:${f.name}`, f.label]);
      if (scope.properties) options.push(["property", L("rules.property")]);
    } else {
      const byGroup = new Map();
      for (const f of C.fields) {
        const label = L(`rules.group.${f.group}`);
        if (!byGroup.has(label)) byGroup.set(label, []);
        byGroup.get(label).push([`f:${f.name}`, f.label]);
      }
      options = [...byGroup.entries()];
      const behaviour = [];
      for (const c of C.collections) {
        behaviour.push([`has:${c.name}`, fill(C.templates["rules.has"], { what: c.label })]);
        behaviour.push([`count:${c.name}`, fill(C.templates["rules.count"], { what: c.label })]);
        if (c.sum_fields.length || c.properties) {
          for (const func of ["sum", "min", "max"]) {
            behaviour.push([`${func}:${c.name}`, fill(C.templates[`rules.${func}`], { what: c.label })]);
          }
        }
      }
      options.push([L("rules.group.behaviour"), behaviour]);
      if (C.segments.length) options.push([L("rules.group.segments"), [["segment", L("rules.in_segment")]]]);
    }
    return select(options, current, (v) => { Object.assign(item, chosen(v, scope)); changed(); },
                  L("rules.field"));
  }

  function chosen(value, scope) {
    const negated = false;
    if (value === "segment") return { kind: "segment", negated, name: C.segments[0] };
    if (value === "property") return { kind: "cond", negated, field: "properties.name", op: "=", value: "" };
    const [kind, name] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
    if (kind === "f") return condFor(name, scope);
    const source = { collection: name, name: null, where: null, window: null };
    if (kind === "has") return { kind: "has", negated, source };
    const c = collections.get(name);
    const field = kind === "count" ? null : (c.sum_fields[0] ?? "properties.revenue");
    return { kind: "agg", negated, func: kind, field, source, op: ">=", value: 1 };
  }

  function specOf(name, scope) {
    if (name.startsWith("properties.")) return { name, type: "dynamic", ops: C.dynamic_ops };
    if (scope) return scope.fields.find((f) => f.name === name);
    return fields.get(name);
  }

  function condFor(name, scope) {
    const spec = specOf(name, scope);
    const timeLike = ["date", "datetime", "anniversary"].includes(spec.type);
    const op = timeLike ? "within" : spec.ops[0];
    return { kind: "cond", negated: false, field: name, op, value: defaultValue(spec, op) };
  }

  function defaultValue(spec, op) {
    if (op.startsWith("is ")) return null;
    if (op === "within") return spec.type === "anniversary" ? { next: 7, unit: "days" } : { last: 30, unit: "days" };
    if (op === "in" || op === "not in") return spec.choices ? [spec.choices[0]] : [];
    if (spec.choices) return spec.choices[0];
    if (spec.type === "number") return 0;
    if (spec.type === "bool") return true;
    if (spec.type === "date" || spec.type === "datetime") return { date: today };
    return "";
  }

  function defaultItem(scope) {
    if (scope) return condFor(scope.fields[0].name, scope);
    return condFor(C.fields[0].name, null);
  }

  function condEditors(item, scope) {
    const spec = specOf(item.field, scope);
    const parts = [];
    if (spec.type === "dynamic") {
      parts.push(input({ value: item.field.slice("properties.".length), size: 12,
                         "aria-label": L("rules.property"), maxlength: 64 },
                       (v) => { item.field = `properties.${v}`; schedule({ rule_json: toJSON(rootItem) }, false); }));
    }
    parts.push(select(spec.ops.map((o) => [o, L(`rules.op.${o}`)]), item.op, (v) => {
      const was = item.op;
      item.op = v;
      const sameShape = (a, b) => (a === "in" || a === "not in") === (b === "in" || b === "not in")
        && (a === "within") === (b === "within") && !a.startsWith("is ") && !b.startsWith("is ");
      if (!sameShape(was, v)) item.value = defaultValue(spec, v);
      changed();
    }, L("rules.operator")));
    if (item.op.startsWith("is ")) return parts;
    if (item.op === "within") {
      parts.push(windowEditor(item.value, (w) => { item.value = w; changed(); }, spec.type === "anniversary"));
      return parts;
    }
    parts.push(valueEditor(spec, item));
    return parts;
  }

  function valueEditor(spec, item) {
    const list = item.op === "in" || item.op === "not in";
    const update = (v) => { item.value = v; schedule({ rule_json: toJSON(rootItem) }, false); };
    if (spec.choices) {
      if (list) {
        const node = el("select", { multiple: true, "aria-label": L("rules.value"), size: Math.min(spec.choices.length, 4) });
        for (const c of spec.choices) {
          const option = el("option", { value: c, text: choiceLabel(c) });
          option.selected = item.value.includes(c);
          node.append(option);
        }
        node.addEventListener("change", () => update([...node.selectedOptions].map((o) => o.value)));
        return node;
      }
      return select(spec.choices.map((c) => [c, choiceLabel(c)]),
                    item.value, update, L("rules.value"));
    }
    const kind = spec.type === "dynamic" ? kindOf(item.value) : spec.type;
    const parse = (raw) => {
      if (kind === "number") return raw.trim() === "" ? null : Number(raw.replace(",", "."));
      if (kind === "bool") return raw === "true";
      if (kind === "date" || kind === "datetime") return { date: raw };
      return raw;
    };
    const editors = [];
    if (spec.type === "dynamic") {
      editors.push(select([["text", L("rules.kind.text")], ["number", L("rules.kind.number")], ["bool", L("rules.kind.bool")]],
                          kind, (k) => { item.value = k === "number" ? 0 : k === "bool" ? true : ""; if (list) item.value = [item.value]; changed(); },
                          L("rules.value")));
    }
    if (kind === "bool" && !list) {
      editors.push(select([["true", L("rules.true")], ["false", L("rules.false")]], String(item.value), (v) => update(v === "true"), L("rules.value")));
    } else if (list) {
      const shown = (item.value || []).map((v) => (v && v.date) || v).join(", ");
      editors.push(input({ value: shown, "aria-label": L("rules.value"), title: L("rules.values_hint"), placeholder: L("rules.values_hint") },
                         (raw) => update(raw.split(",").map((s) => s.trim()).filter((s) => s !== "").map(parse))));
    } else {
      const type = kind === "number" ? "number" : (kind === "date" || kind === "datetime") ? "date" : "text";
      const value = item.value && item.value.date ? item.value.date : (item.value ?? "");
      editors.push(input({ type, value, step: type === "number" ? "any" : null, "aria-label": L("rules.value") },
                         (raw) => update(parse(raw))));
    }
    return editors.length === 1 ? editors[0] : el("span", { class: "rule-value" }, ...editors);
  }

  // The builder shows a choice in words where the catalogue has them (weiblich, aktiv, …).
  function choiceLabel(choice) {
    const keys = ["gender", "status", "consent.status", "rules.choice"].map((k) => `${k}.${choice}`);
    for (const key of keys) {
      if (C.labels[key] !== undefined) return C.labels[key];
    }
    return choice;
  }

  function kindOf(value) {
    const first = Array.isArray(value) ? value[0] : value;
    if (typeof first === "number") return "number";
    if (typeof first === "boolean") return "bool";
    return "text";
  }

  function windowEditor(win, onChange, anniversary, optional = false) {
    const current = !win ? "none" : Object.keys(win).find((k) => k !== "unit");
    const kinds = anniversary ? ["last", "next", "this"] : ["last", "next", "since", "before", "between", "this"];
    const options = (optional ? ["none", ...kinds] : kinds).map((k) => [k, L(`rules.window.${k}`)]);
    const parts = [select(options, current, (k) => onChange(defaultWindow(k)), L("rules.window"))];
    if (current === "last" || current === "next") {
      parts.push(input({ type: "number", min: 0, max: 36500, value: win[current], "aria-label": L("rules.window"), class: "short" },
                       (v) => { win[current] = Math.max(0, Math.round(Number(v) || 0)); schedule({ rule_json: toJSON(rootItem) }, false); }));
      parts.push(select(C.units.map((u) => [u, L(`rules.unit.${u}`)]), win.unit, (u) => { win.unit = u; changed(); }, L("rules.window")));
    } else if (current === "since" || current === "before") {
      parts.push(input({ type: "date", value: win[current], "aria-label": L("rules.window") },
                       (v) => { win[current] = v; schedule({ rule_json: toJSON(rootItem) }, false); }));
    } else if (current === "between") {
      win.between.forEach((d, i) => parts.push(input({ type: "date", value: d, "aria-label": L("rules.window") },
        (v) => { win.between[i] = v; schedule({ rule_json: toJSON(rootItem) }, false); })));
    } else if (current === "this") {
      parts.push(select(C.periods.map((p) => [p, L(`rules.period.${p}`)]), win.this, (p) => { win.this = p; changed(); }, L("rules.window")));
    }
    return el("span", { class: "rule-window" }, ...parts);
  }

  function defaultWindow(kind) {
    if (kind === "none") return null;
    if (kind === "last" || kind === "next") return { [kind]: 30, unit: "days" };
    if (kind === "since" || kind === "before") return { [kind]: today };
    if (kind === "between") return { between: [today, today] };
    return { this: "month" };
  }

  function sourceEditors(item) {
    const source = item.source;
    const c = collections.get(source.collection);
    const parts = [];
    if (c.named) {
      parts.push(el("label", {}, `${L("rules.event_name")} `,
        input({ value: source.name ?? "", maxlength: 200, placeholder: "Order Completed" },
              (v) => { source.name = v.trim() || null; schedule({ rule_json: toJSON(rootItem) }, false); })));
    }
    parts.push(el("label", {}, `${L("rules.window")} `,
      windowEditor(source.window, (w) => { source.window = w; changed(); }, false, true)));
    if (item.kind === "agg") {
      if (item.func !== "count") {
        const sums = c.sum_fields.map((f) => [f, c.fields.find((x) => x.name === f).label]);
        if (c.properties) {
          parts.push(el("label", {}, `${L("rules.property")} `,
            input({ value: (item.field || "").replace(/^properties\./, ""), size: 12, maxlength: 64 },
                  (v) => { item.field = `properties.${v}`; schedule({ rule_json: toJSON(rootItem) }, false); })));
        } else {
          parts.push(select(sums, item.field, (v) => { item.field = v; changed(); }, L("rules.value")));
        }
      }
      parts.push(select(C.comparisons.map((o) => [o, L(`rules.op.${o}`)]), item.op, (v) => { item.op = v; changed(); }, L("rules.operator")));
      parts.push(input({ type: "number", step: "any", value: item.value, class: "short", "aria-label": L("rules.value") },
                       (v) => { item.value = v.trim() === "" ? null : Number(v); schedule({ rule_json: toJSON(rootItem) }, false); }));
    }
    const filters = el("div", { class: "rule-filters" });
    if (source.where) {
      filters.append(renderGroup(source.where, c, () => { source.where = null; changed(); }));
    } else {
      filters.append(button(`+ ${L("rules.add_filter")}`, () => { source.where = group("and", [defaultItem(c)]); changed(); }, "rule-secondary"));
    }
    return el("div", { class: "rule-source-body" }, el("div", { class: "rule-row" }, ...parts), filters);
  }

  // --- the live check: both forms and the count ---------------------------------------------

  let timer = null;
  let sequence = 0;
  let builderBroken = false;

  function schedule(body, fromText) {
    clearTimeout(timer);
    if (!fromText && body.rule_json === null) {
      status.textContent = "";
      return;
    }
    timer = setTimeout(() => check(body, fromText), 300);
  }

  async function check(body, fromText) {
    const mine = ++sequence;
    status.classList.remove("error");
    status.textContent = L("segments.counting");
    let response;
    try {
      response = await relataFetch(C.check_url, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch {
      status.textContent = "";
      return;
    }
    if (mine !== sequence) return;  // a newer check is on its way
    const data = await response.json().catch(() => ({ detail: String(response.status) }));
    if (!response.ok) {
      status.classList.add("error");
      status.textContent = typeof data.detail === "string" ? data.detail : String(response.status);
      builderBroken = !fromText;
      return;
    }
    builderBroken = false;
    status.textContent = fill(C.templates["segments.count"], { n: numbers.format(data.count) });
    if (fromText) {
      rootItem = asRoot(fromJSON(data.rule_json));
      render();
    } else {
      textarea.value = data.rule;
    }
  }

  function asRoot(item) {
    return item.kind === "group" && !item.negated ? item : group("and", [item]);
  }

  textarea.addEventListener("input", () => {
    // Untrimmed: the positions in error messages are the ones the marketer sees.
    if (textarea.value.trim()) schedule({ rule: textarea.value }, true);
  });
  form.addEventListener("submit", (event) => {
    if (builderBroken) {
      event.preventDefault();
      status.focus();
    }
  });

  rootItem = initial ? asRoot(fromJSON(initial)) : group("and", []);
  box.hidden = false;
  render();
  if (initial) schedule({ rule_json: initial }, false);
})();
