// One JSON object per line on stdout: Cloud Logging reads `severity` and `message` from it.

export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
export type RelayLog = (severity: Severity, message: string, fields?: Record<string, unknown>) => void;

export const jsonLog: RelayLog = (severity, message, fields) => {
  process.stdout.write(`${JSON.stringify({ severity, message, ...fields })}\n`);
};

export const silentLog: RelayLog = () => {};
