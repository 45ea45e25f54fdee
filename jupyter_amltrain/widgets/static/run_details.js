// RunDetails view: status, timeline, properties, log tail with picker, metric charts, CPU/GPU charts, cancel.
// State comes from the kernel (widgets/run_details.py); this file only draws it and sends user actions.

function render({ model, el }) {
  el.classList.add("amltrain-widget", "aml-details");

  const badge = amlEl("span");
  const subStatus = amlEl("span", { class: "aml-sub" });
  const clock = amlEl("span", { class: "aml-muted-text" });
  const live = amlEl("span", { class: "aml-live", title: "refreshing" });
  const cancel = amlEl("button", {
    class: "aml-button aml-danger", text: "Cancel run",
    onclick: () => {
      cancel.disabled = true;
      model.send({ type: "cancel" });
    },
  });
  const refresh = amlEl("button", {
    class: "aml-button", text: "↻", title: "refresh now", onclick: () => model.send({ type: "refresh" }),
  });
  const title = amlEl("span", { class: "aml-title" });
  const header = amlEl("div", { class: "aml-header" }, [title, badge, subStatus, clock, live,
    amlEl("span", { class: "aml-spacer" }), refresh, cancel]);
  const notice = amlEl("div", { class: "aml-notice" });
  const timeline = amlEl("ol", { class: "aml-timeline" });
  const props = amlEl("table", { class: "aml-props" });
  const propsBox = amlEl("details", { class: "aml-section" }, [amlEl("summary", { text: "Properties" }), props]);

  const picker = amlEl("select", {
    class: "aml-select",
    onchange: () => {
      model.set("selected_log", picker.value);
      model.save_changes();
    },
  });
  const skipped = amlEl("span", { class: "aml-muted-text" });
  const logView = amlEl("pre", { class: "aml-log" });
  const logBox = amlEl("div", { class: "aml-section" }, [
    amlEl("div", { class: "aml-row" }, [amlEl("b", { text: "Log " }), picker, skipped]), logView]);

  const metricsGrid = amlEl("div", { class: "aml-grid-charts" });
  const metricsBox = amlEl("div", { class: "aml-section" }, [amlEl("b", { text: "Metrics" }), metricsGrid]);
  const usageGrid = amlEl("div", { class: "aml-grid-charts" });
  const usageBox = amlEl("div", { class: "aml-section" }, [amlEl("b", { text: "Resources" }), usageGrid]);

  el.replaceChildren(header, notice, timeline, propsBox, logBox, metricsBox, usageBox);

  function drawStatus() {
    const status = model.get("status");
    title.textContent = `${model.get("experiment")} #${model.get("number")}`;
    title.title = model.get("run_id");
    badge.className = `aml-badge ${amlStatusClass(status)}`;
    badge.textContent = status;
    subStatus.textContent = model.get("sub_status") ? model.get("sub_status") : "";
    const terminal = model.get("terminal");
    const cancelState = model.get("cancel_state");
    cancel.hidden = terminal;
    cancel.disabled = terminal || status === "CancelRequested" || cancelState === "requested";
    live.hidden = !model.get("refreshing");
    const messages = [];
    if (model.get("error")) messages.push(amlEl("div", { class: "aml-error", text: model.get("error") }));
    for (const warning of model.get("warnings")) messages.push(amlEl("div", { class: "aml-warning", text: warning }));
    if (cancelState && cancelState !== "requested" && cancelState !== "canceled") {
      messages.push(amlEl("div", { class: "aml-error", text: cancelState }));
    }
    if (model.get("view_error")) messages.push(amlEl("div", { class: "aml-error", text: model.get("view_error") }));
    notice.replaceChildren(...messages);
    drawClock();
  }

  function drawClock() {
    const times = model.get("times") || {};
    if (!times.started) {
      clock.textContent = times.created ? `submitted ${amlClock(times.created)}` : "";
      return;
    }
    const end = times.ended || Date.now() / 1000;
    clock.textContent = `${amlDuration(end - times.started)}`;
  }

  function drawTimeline() {
    const history = model.get("history");
    timeline.replaceChildren(...history.map((h, i) => {
      const next = history[i + 1];
      const took = next ? amlDuration(next.time - h.time) : "";
      return amlEl("li", { class: amlStatusClass(h.status) }, [
        amlEl("span", { class: "aml-time", text: amlClock(h.time) }),
        amlEl("b", { text: h.status }),
        h.sub_status ? amlEl("span", { class: "aml-sub", text: h.sub_status }) : null,
        took ? amlEl("span", { class: "aml-muted-text", text: took }) : null,
      ]);
    }));
  }

  function drawProps() {
    const entries = Object.entries(model.get("properties"));
    props.replaceChildren(...entries.map(([key, value]) =>
      amlEl("tr", {}, [amlEl("th", { text: key }), amlEl("td", { text: value })])));
  }

  function drawPicker() {
    const files = model.get("log_files");
    const chosen = model.get("selected_log");
    const shown = model.get("shown_log");
    const options = [amlEl("option", { value: "", text: `follow the run${shown && !chosen ? ` (${shown})` : ""}` })];
    for (const name of files) options.push(amlEl("option", { value: name, text: name }));
    picker.replaceChildren(...options);
    picker.value = files.includes(chosen) ? chosen : "";
  }

  // Follow the end of the log unless the reader scrolled up to read something; scrolling back down follows again.
  let follow = true;
  logView.addEventListener("scroll", () => {
    follow = logView.scrollHeight - logView.scrollTop - logView.clientHeight < 24;
  });
  const toEnd = () => { if (follow) logView.scrollTop = logView.scrollHeight; };

  function drawLog() {
    const lines = model.get("log_lines");
    const count = model.get("log_skipped");
    skipped.textContent = count ? ` (${count} earlier lines not shown)` : "";
    if (lines.length) {
      logView.textContent = lines.join("\n");
    } else {
      logView.textContent = model.get("terminal")
        ? "Log is empty or no log files found."
        : "Waiting for the run's log...";
    }
    toEnd();
    requestAnimationFrame(toEnd); // the first drawing happens before the view is attached and has a height
  }

  function drawMetrics() {
    const metrics = model.get("metrics");
    const names = Object.keys(metrics);
    metricsBox.hidden = names.length === 0;
    metricsGrid.replaceChildren(...names.map((name, index) => amlChartBlock(
      [{ label: name, xs: metrics[name].steps, ys: metrics[name].values, color: AML_COLORS[index % AML_COLORS.length] }],
      { title: name, xFormat: amlFmt })));
  }

  function drawUsage() {
    // Series named by the supervisor's sampler: cpu_utilization_percentage, memory_usage_bytes, and per GPU
    // gpu_<i>_utilization_percentage and gpu_<i>_memory_usage_bytes.
    const usage = model.get("usage") || {};
    const starts = Object.values(usage).filter((s) => s.t.length).map((s) => s.t[0]);
    const t0 = starts.length ? Math.min(...starts) : 0;
    const secondsLabel = (v) => `${Math.round(v)}s`;
    const chart = (name, label, color, extra) => {
      const s = usage[name];
      if (!s || !s.t.length) return null;
      return amlChartBlock([{ label, xs: s.t.map((t) => t - t0), ys: s.v, color }],
        Object.assign({ title: label, yMin: 0, xFormat: secondsLabel }, extra));
    };
    const charts = [
      chart("cpu_utilization_percentage", "CPU (% of one core)", AML_COLORS[0], {}),
      chart("memory_usage_bytes", "Memory", AML_COLORS[1], { yFormat: amlBytes }),
    ];
    const gpus = [...new Set(Object.keys(usage).map((k) => (k.match(/^gpu_(\d+)_/) || [])[1]).filter((g) => g))];
    gpus.sort((a, b) => Number(a) - Number(b));
    for (const gpu of gpus) {
      charts.push(chart(`gpu_${gpu}_utilization_percentage`, `GPU ${gpu} utilization %`, AML_COLORS[2], { yMax: 100 }));
      charts.push(chart(`gpu_${gpu}_memory_usage_bytes`, `GPU ${gpu} memory`, AML_COLORS[4], { yFormat: amlBytes }));
    }
    const shown = charts.filter((c) => c);
    usageBox.hidden = shown.length === 0;
    usageGrid.replaceChildren(...shown);
  }

  drawStatus();
  drawTimeline();
  drawProps();
  drawPicker();
  drawLog();
  drawMetrics();
  drawUsage();

  const on = (names, draw) => {
    for (const name of names) model.on(`change:${name}`, draw);
    return () => { for (const name of names) model.off(`change:${name}`, draw); };
  };
  const offs = [
    on(["status", "sub_status", "terminal", "refreshing", "error", "warnings", "cancel_state", "view_error", "times",
      "number", "experiment"], drawStatus),
    on(["history"], drawTimeline),
    on(["properties"], drawProps),
    on(["log_files", "selected_log", "shown_log"], drawPicker),
    on(["log_lines", "log_skipped"], drawLog),
    on(["metrics"], drawMetrics),
    on(["usage"], drawUsage),
  ];
  // The running clock ticks here rather than in the kernel: no message per second just to move a timer.
  const timer = setInterval(() => { if (!model.get("terminal")) drawClock(); }, 1000);
  return () => {
    clearInterval(timer);
    offs.forEach((off) => off());
  };
}

export default { render };
