// RunHistory view: a sortable table of runs; tick runs to compare a metric's curves on one chart; click a
// row to open its details (the kernel puts them below the table). State comes from widgets/run_history.py.

const AML_FIXED_COLUMNS = [
  { key: "number", label: "Run", value: (r) => r.number, show: (r) => `${r.experiment} #${r.number}` },
  { key: "status", label: "Status", value: (r) => r.status, show: (r) => amlBadge(r.status) },
  { key: "created", label: "Start", value: (r) => r.started || r.created, show: (r) => amlDateTime(r.started || r.created) },
  { key: "duration", label: "Duration", value: (r) => r.duration, show: (r) => amlDuration(r.duration) },
  { key: "target", label: "Compute", value: (r) => r.target, show: (r) => r.target },
  { key: "environment", label: "Environment", value: (r) => r.environment || "", show: (r) => r.environment || "–" },
];

function amlCompare(a, b) {
  const missingA = a === null || a === undefined || a === "";
  const missingB = b === null || b === undefined || b === "";
  if (missingA || missingB) return missingA === missingB ? 0 : missingA ? 1 : -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(a).localeCompare(String(b), undefined, { numeric: true });
}

function render({ model, el }) {
  el.classList.add("amltrain-widget", "aml-history");
  const title = amlEl("span", { class: "aml-title" });
  const live = amlEl("span", { class: "aml-live", title: "refreshing" });
  const refresh = amlEl("button", {
    class: "aml-button", text: "↻ Refresh", onclick: () => model.send({ type: "refresh" }),
  });
  const notice = amlEl("div", { class: "aml-notice" });
  const table = amlEl("table", { class: "aml-table" });
  const tableBox = amlEl("div", { class: "aml-table-box" }, [table]);
  const metricPicker = amlEl("select", {
    class: "aml-select",
    onchange: () => {
      model.set("compare_metric", metricPicker.value);
      model.save_changes();
    },
  });
  const compareHint = amlEl("span", { class: "aml-muted-text" });
  const compareChart = amlEl("div", { class: "aml-compare-chart" });
  const compareBox = amlEl("div", { class: "aml-section" }, [
    amlEl("div", { class: "aml-row" }, [amlEl("b", { text: "Compare " }), metricPicker, compareHint]), compareChart]);
  el.replaceChildren(
    amlEl("div", { class: "aml-header" }, [title, live, amlEl("span", { class: "aml-spacer" }), refresh]),
    notice, tableBox, compareBox);

  function columns() {
    const metricColumns = model.get("metric_columns").map((name) => ({
      key: `metric:${name}`, label: name, value: (r) => r.metrics[name], show: (r) => amlFmt(r.metrics[name]),
    }));
    return AML_FIXED_COLUMNS.concat(metricColumns);
  }

  function toggle(runId, on) {
    const selected = new Set(model.get("selected"));
    if (on) selected.add(runId); else selected.delete(runId);
    model.set("selected", [...selected]);
    model.save_changes();
  }

  function drawTable() {
    title.textContent = model.get("title");
    live.hidden = !model.get("refreshing");
    notice.replaceChildren(...(model.get("view_error")
      ? [amlEl("div", { class: "aml-error", text: model.get("view_error") })] : []));
    const cols = columns();
    const sortBy = model.get("sort_by");
    const desc = model.get("sort_desc");
    const sortColumn = cols.find((c) => c.key === sortBy) || cols[2];
    const rows = [...model.get("rows")].sort((a, b) => {
      const order = amlCompare(sortColumn.value(a), sortColumn.value(b));
      return desc ? -order : order;
    });
    const selected = new Set(model.get("selected"));
    const opened = model.get("opened");
    const head = amlEl("tr", {}, [amlEl("th", { title: "compare" }, "⇄")].concat(cols.map((c) => amlEl("th", {
      class: "aml-sortable",
      title: "sort",
      onclick: () => {
        if (model.get("sort_by") === c.key) model.set("sort_desc", !model.get("sort_desc"));
        else { model.set("sort_by", c.key); model.set("sort_desc", c.key === "created"); }
        model.save_changes();
      },
    }, [c.label, c.key === sortColumn.key ? (desc ? " ▾" : " ▴") : ""]))));
    const body = rows.map((r) => {
      const box = amlEl("input", {
        type: "checkbox", checked: selected.has(r.run_id),
        onclick: (event) => event.stopPropagation(),
        onchange: (event) => toggle(r.run_id, event.target.checked),
      });
      return amlEl("tr", {
        class: r.run_id === opened ? "aml-opened" : "",
        title: `${r.run_id}: click for details`,
        onclick: () => model.send({ type: "open", run_id: r.run_id }),
      }, [amlEl("td", {}, [box])].concat(cols.map((c) => amlEl("td", {}, [c.show(r)]))));
    });
    table.replaceChildren(amlEl("thead", {}, [head]), amlEl("tbody", {}, body.length ? body
      : [amlEl("tr", {}, [amlEl("td", { colspan: cols.length + 1, class: "aml-muted-text", text: "No runs yet." })])]));
  }

  function drawCompare() {
    const names = model.get("compare_metrics");
    const chosen = model.get("compare_metric");
    metricPicker.replaceChildren(...names.map((n) => amlEl("option", { value: n, text: n })));
    metricPicker.value = chosen;
    metricPicker.hidden = names.length === 0;
    const compare = model.get("compare");
    const runs = Object.entries(compare);
    compareHint.textContent = model.get("selected").length
      ? (runs.length ? "" : " the selected runs have no chartable metric yet")
      : " tick runs in the table to compare their metric curves";
    compareChart.replaceChildren(...(runs.length ? [amlChartBlock(
      runs.map(([runId, s], i) => ({ label: s.label || runId, xs: s.steps, ys: s.values,
        color: AML_COLORS[i % AML_COLORS.length] })),
      { title: chosen, height: 190 })] : []));
  }

  drawTable();
  drawCompare();
  const tableKeys = ["rows", "metric_columns", "sort_by", "sort_desc", "selected", "opened", "refreshing", "title",
    "view_error"];
  const compareKeys = ["compare", "compare_metric", "compare_metrics", "selected"];
  tableKeys.forEach((k) => model.on(`change:${k}`, drawTable));
  compareKeys.forEach((k) => model.on(`change:${k}`, drawCompare));
  return () => {
    tableKeys.forEach((k) => model.off(`change:${k}`, drawTable));
    compareKeys.forEach((k) => model.off(`change:${k}`, drawCompare));
  };
}

export default { render };
