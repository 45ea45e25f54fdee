-- The workspace store. Times are Unix seconds (REAL, UTC); JSON columns hold TEXT.
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS environments (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition TEXT NOT NULL,          -- v1 serialized environment, registry password removed
    image_hash TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE IF NOT EXISTS images (
    hash TEXT PRIMARY KEY,
    tag TEXT NOT NULL,
    status TEXT NOT NULL,              -- Built | Failed
    built REAL,
    build_seconds REAL
);

CREATE TABLE IF NOT EXISTS computes (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,                -- AmlCompute
    vm_size TEXT NOT NULL,
    vm_priority TEXT NOT NULL,
    min_nodes INTEGER NOT NULL,
    max_nodes INTEGER NOT NULL,
    idle_seconds INTEGER NOT NULL,
    gpus_per_node INTEGER NOT NULL,
    gpu_ids TEXT NOT NULL,             -- JSON list of host GPU indices the pool may use
    tags TEXT NOT NULL,
    description TEXT,
    provisioning_state TEXT NOT NULL,
    created REAL NOT NULL,
    modified REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS experiments (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    created REAL NOT NULL,
    next_number INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    experiment TEXT NOT NULL REFERENCES experiments(name),
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    sub_status TEXT NOT NULL DEFAULT '',
    target TEXT NOT NULL,
    node INTEGER,                      -- node slot held on the compute while the run lives
    gpus TEXT NOT NULL DEFAULT '[]',   -- JSON list of GPU indices held
    queue_seq INTEGER,                 -- FIFO position among runs waiting for this target
    definition TEXT NOT NULL,          -- v1 runDefinition (JSON)
    snapshot_id TEXT,
    image_hash TEXT,
    properties TEXT NOT NULL DEFAULT '{}',
    tags TEXT NOT NULL DEFAULT '{}',
    error TEXT,                        -- JSON of get_details()['error']
    warnings TEXT NOT NULL DEFAULT '[]',
    exit_code INTEGER,
    supervisor_pid INTEGER,
    supervisor_started REAL,
    container TEXT,
    created REAL NOT NULL,
    started REAL,
    ended REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_by_experiment ON runs(experiment, created DESC);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_by_target ON runs(target, queue_seq);

CREATE TABLE IF NOT EXISTS run_status_history (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    sub_status TEXT NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS status_history_by_run ON run_status_history(run_id, time);

-- One row per logging call (run.log, log_list, log_row, log_table, log_image), in call order.
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,                -- scalar | list | row | table | image
    value TEXT NOT NULL,               -- JSON
    step INTEGER,
    description TEXT NOT NULL DEFAULT '',
    time REAL NOT NULL,
    PRIMARY KEY (run_id, name, seq)
);

-- How far each run's tracking/events.jsonl has been read into the tables above.
CREATE TABLE IF NOT EXISTS ingest_offsets (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id) ON DELETE CASCADE,
    offset INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS models (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    run_id TEXT,
    path TEXT NOT NULL,                -- folder under the workspace's models/
    description TEXT,
    tags TEXT NOT NULL DEFAULT '{}',
    properties TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL,
    PRIMARY KEY (name, version)
);

-- System readings of a running job, sampled by its supervisor (GPU from NVML; CPU and memory from the
-- container's cgroup or the process tree). Kept apart from user metrics so get_metrics() keeps v1's shape.
CREATE TABLE IF NOT EXISTS system_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    time REAL NOT NULL,
    name TEXT NOT NULL,                -- cpu_utilization_percentage, memory_usage_bytes, utilization_percentage, ...
    gpu INTEGER,                       -- host GPU index for GPU readings; NULL for the job's CPU and memory
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS system_metrics_by_run ON system_metrics(run_id, time);
