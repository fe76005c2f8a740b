// A minimal leveled logger on stderr (stdout carries only the "listening"
// line). LOG_LEVEL: debug | info | warning | error (default info).

const LEVELS = { debug: 10, info: 20, warning: 30, warn: 30, error: 40 };
const threshold = LEVELS[(process.env.LOG_LEVEL ?? 'info').toLowerCase()] ?? LEVELS.info;

function write(level, name, message, extra) {
  if (LEVELS[level] < threshold) return;
  const detail = extra === undefined ? '' : ` ${formatExtra(extra)}`;
  process.stderr.write(`${new Date().toISOString()} ${level.toUpperCase()} ${name}: ${message}${detail}\n`);
}

function formatExtra(extra) {
  if (extra instanceof Error) return extra.stack ?? String(extra);
  try {
    return JSON.stringify(extra);
  } catch {
    return String(extra);
  }
}

/** A logger whose lines carry ``name``. */
export function logger(name) {
  return {
    debug: (message, extra) => write('debug', name, message, extra),
    info: (message, extra) => write('info', name, message, extra),
    warn: (message, extra) => write('warning', name, message, extra),
    error: (message, extra) => write('error', name, message, extra),
  };
}
