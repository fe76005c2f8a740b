// Queued completions on BullMQ (Redis): the seed's AlertQueueService, on
// Bull's maintained successor.
//
// A job is complete_line_item {project_id, line_item_id, user_id}, with
// attempts and exponential backoff (with jitter). Running it twice changes
// nothing: the second run meets a stale line item and reports "stale"
// without touching any row. Rejections (no such project, not a member) are
// final: UnrecoverableError sends them to the failed set without retries.
// BullMQ's failed set is the dead-letter list: jobs that will not run again
// on their own. Job ids are complete-<project>-<item>-<uuid>. A worker that dies mid-job loses its lock; the stalled-job
// check of any live worker puts the job back (a crash never loses a job).

import { randomUUID } from 'node:crypto';
import { Queue, UnrecoverableError, Worker } from 'bullmq';
import Redis from 'ioredis';
import { CompletionError, StaleCompletion } from './completion.js';
import { logger } from './log.js';

const log = logger('queue');

export const QUEUE_NAME = 'alertbench';
export const COMPLETE_JOB = 'complete_line_item';
/** How long finished jobs (and dead letters) stay listable, in seconds. */
const JOB_TTL_S = 7 * 24 * 3600;

// BullMQ state -> the contract's job status (the reference's SAQ names).
const STATUS = {
  completed: 'complete',
  failed: 'failed',
  active: 'active',
  waiting: 'queued',
  prioritized: 'queued',
  'waiting-children': 'queued',
  delayed: 'queued', // a retry waiting for its backoff
};

function lastLine(text) {
  const lines = String(text ?? '')
    .trim()
    .split('\n');
  const last = lines[lines.length - 1];
  return last ? last : null;
}

function attemptsOf(job) {
  return Math.max(job.attemptsStarted ?? 0, job.attemptsMade ?? 0);
}

export class CompletionQueue {
  /**
   * @param {{redisUrl:string, prefix:string, attempts:number, retryBaseDelayMs:number,
   *   concurrency:number, metrics?:object}} options
   */
  constructor({ redisUrl, prefix, attempts, retryBaseDelayMs, concurrency, metrics = null }) {
    this._redisUrl = redisUrl;
    this._prefix = prefix;
    this._attempts = attempts;
    this._retryBaseDelayMs = retryBaseDelayMs;
    this._concurrency = concurrency;
    this._metrics = metrics;
    // The producer fails fast when Redis is down (no offline queue), so an
    // enqueue answers 503 instead of hanging; BullMQ's advice for queues.
    this._producerConnection = new Redis(redisUrl, {
      maxRetriesPerRequest: null,
      enableOfflineQueue: false,
      connectionName: 'alertbench-seed-node-queue',
    });
    this._producerConnection.on('error', () => {}); // reported by the calls that fail
    this.queue = new Queue(QUEUE_NAME, { connection: this._producerConnection, prefix });
    this.queue.on('error', (err) => log.warn(`queue: ${err.message}`));
    this.worker = null;
  }

  async ready() {
    await this.queue.waitUntilReady();
  }

  /**
   * Queue a completion; returns the job id. While a job for the same project
   * and line item is pending (waiting, running or between retries), asking
   * again returns that job instead of queuing a second one (BullMQ's
   * deduplication); once it has finished, a new request is a new job, so a
   * dead letter never blocks a later, legitimate completion.
   */
  async enqueueCompletion({ projectId, lineItemId, userId }) {
    const job = await this.queue.add(
      COMPLETE_JOB,
      { project_id: projectId, line_item_id: lineItemId, user_id: userId },
      {
        jobId: `complete-${projectId}-${lineItemId}-${randomUUID()}`,
        deduplication: { id: `complete-${projectId}-${lineItemId}` },
        attempts: this._attempts,
        backoff: { type: 'exponential', delay: this._retryBaseDelayMs, jitter: 0.5 },
        removeOnComplete: { age: JOB_TTL_S },
        removeOnFail: { age: JOB_TTL_S },
      },
    );
    return job.id;
  }

  /** The contract's view of one job, or null if there is no such job. */
  async job(jobId) {
    // State first, then the job: a finished state is written in the same
    // Redis script as the job's result or error, so a job read after seeing
    // it finished holds the final result (the other order can pair a
    // finished state with the job as it was just before).
    const state = await this.queue.getJobState(jobId);
    if (state === 'unknown') return null;
    const job = await this.queue.getJob(jobId);
    if (!job) return null; // removed between the two reads
    return {
      jobId: job.id,
      status: STATUS[state] ?? state,
      attempts: attemptsOf(job),
      result: job.returnvalue ?? null,
      error: lastLine(job.failedReason),
      attemptTimesMs: job.data.attempt_times_ms ?? [],
    };
  }

  /** Failed jobs (the dead-letter list), at most ``limit``, by job id. */
  async deadLetters(limit = 100) {
    const jobs = await this.queue.getFailed(0, limit - 1);
    return jobs
      .filter(Boolean)
      .map((job) => ({
        jobId: job.id,
        status: 'failed',
        attempts: attemptsOf(job),
        kwargs: {
          project_id: job.data.project_id,
          line_item_id: job.data.line_item_id,
          user_id: job.data.user_id,
        },
        error: lastLine(job.failedReason) ?? '',
      }))
      .sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
  }

  /**
   * Start a worker running ``run(projectId, lineItemId, userId)`` (the
   * runtime's completion service) for each job.
   */
  startWorker(run) {
    if (this.worker !== null) return;
    const processor = async (job) => {
      const started = Date.now();
      try {
        return await attempt(job);
      } finally {
        // Each attempt's [start, end] (epoch ms), kept with the job: the
        // contract's attemptTimesMs, for the harness's retry_schedule check.
        const times = [...(job.data.attempt_times_ms ?? []), [started, Date.now()]];
        await job.updateData({ ...job.data, attempt_times_ms: times });
      }
    };
    const attempt = async (job) => {
      const { project_id: projectId, line_item_id: lineItemId, user_id: userId } = job.data;
      let result;
      try {
        result = await run(projectId, lineItemId, userId);
      } catch (err) {
        // Already done (or never due): a re-run must change nothing.
        if (err instanceof StaleCompletion) return { outcome: 'stale', detail: err.message };
        // No such project, not a member: retrying cannot fix it.
        if (err instanceof CompletionError) throw new UnrecoverableError(err.message);
        throw err;
      }
      return {
        outcome: 'completed',
        nextLineItemId: result.nextLineItemId,
        alertId: result.alert ? result.alert.id : null,
      };
    };
    this._workerConnection = new Redis(this._redisUrl, {
      maxRetriesPerRequest: null,
      connectionName: 'alertbench-seed-node-worker',
    });
    this._workerConnection.on('error', () => {}); // the worker's 'error' event reports
    this.worker = new Worker(QUEUE_NAME, processor, {
      connection: this._workerConnection,
      prefix: this._prefix,
      concurrency: this._concurrency,
      // A job not renewed for this long is stalled (its worker died) and put
      // back by any live worker's check, run this often.
      lockDuration: 10_000,
      stalledInterval: 5_000,
      maxStalledCount: 1,
    });
    this.worker.on('error', (err) => log.warn(`worker: ${err.message}`));
    this.worker.on('completed', () => this._metrics?.queueJobs.labels('complete').inc());
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || err?.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (final) {
        this._metrics?.queueJobs.labels('failed').inc();
        this._metrics?.queueDeadLetters.inc();
        log.warn(`job ${job.id} failed for good after ${attemptsOf(job)} attempt(s): ${err?.message}`);
      } else {
        this._metrics?.queueJobs.labels('retried').inc();
        this._metrics?.queueRetries.inc();
      }
    });
  }

  async close() {
    if (this.worker !== null) await this.worker.close();
    await this.queue.close();
    for (const conn of [this._workerConnection, this._producerConnection]) {
      if (conn) conn.disconnect();
    }
  }
}
