// Shapes of the REST API's answers (docs/openapi.yaml).

export interface IGpu {
  index: number;
  uuid: string;
  name: string;
  utilization_pct: number | null;
  memory_used_bytes: number | null;
  memory_total_bytes: number | null;
  temperature_c: number | null;
  power_w: number | null;
  holder: string | null;
  declared: boolean;
}

export interface IGpus {
  source: 'nvml' | 'declared' | 'none';
  sampled: number;
  message?: string;
  gpus: IGpu[];
}

export interface INodeSlot {
  index: number;
  run_id: string | null;
  status: string | null;
  gpus: number[];
}

export interface IQueuedRun {
  run_id: string;
  experiment: string;
  status: string;
  sub_status: string;
  created: number;
}

export interface ICompute {
  name: string;
  kind: 'AmlCompute' | 'local';
  vm_size: string | null;
  min_nodes: number;
  max_nodes: number | null;
  gpus_per_node: number;
  gpu_ids: number[];
  state: string;
  busy: number;
  idle: number | null;
  nodes: INodeSlot[];
  queue: IQueuedRun[];
}

export interface IEnvironment {
  name: string;
  version: number | null;
  runs: number;
  last_used: number | null;
  docker: boolean;
  user_managed: boolean;
  image: string | null;
  image_hash: string | null;
  state: string;
  substitute: string | null;
  detail: string;
  interpreter: string | null;
  user: string | null;
}

export interface IEnvironments {
  environments: IEnvironment[];
  docker: { reachable: boolean | null; message: string };
}

export interface IExperiment {
  name: string;
  experiment_id: string;
  created: number;
  runs: number;
  last_run: number | null;
  statuses: Record<string, number>;
}

export type MetricValue = number | string | boolean | null;

export interface IRunSummary {
  run_id: string;
  experiment: string;
  number: number;
  status: string;
  sub_status: string;
  target: string;
  environment: string | null;
  created: number;
  started: number | null;
  ended: number | null;
  duration: number | null;
  metrics: Record<string, MetricValue>;
  tags: Record<string, unknown>;
}

export interface IRuns {
  runs: IRunSummary[];
  total: number;
  limit: number;
  offset: number;
  statuses: Record<string, number>;
}

export interface ILogFile {
  name: string;
  size: number;
}

export interface IRunDetails extends Omit<IRunSummary, 'metrics'> {
  node: number | null;
  gpus: number[];
  exit_code: number | null;
  error: string | null;
  warnings: string[];
  properties: Record<string, unknown>;
  cancel_requested: boolean;
  terminal: boolean;
  script: string | null;
  arguments: string[];
  command: string;
  history: { status: string; subStatus: string; time: number }[];
  log_files: ILogFile[];
  current_log: string | null;
}

export interface ISeries {
  steps: number[];
  values: MetricValue[];
}

export interface IMetrics {
  version: number;
  unchanged: boolean;
  series?: Record<string, ISeries>;
  latest?: Record<string, MetricValue>;
}

export interface IWorkspace {
  name: string;
  default: string;
  root: string;
  known: string[];
}

/** One server-sent event of a log stream. */
export type LogEvent =
  | { event: 'file'; data: { file: string | null } }
  | { event: 'log'; data: { file: string; text: string; offset: number; size: number } }
  | { event: 'status'; data: { status: string; sub_status: string } }
  | { event: 'end'; data: { status: string } }
  | { event: 'error'; data: { message: string } };
