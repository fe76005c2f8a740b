// The OpenAPI document of the HTTP API (served at /openapi.json).

const id = (name, description) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'integer', minimum: 1, maximum: 9223372036854775807 },
});
const error = (description) => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
});
const ok = (description, schema) => ({ description, content: { 'application/json': { schema } } });
const ref = (name) => ({ $ref: `#/components/schemas/${name}` });
const bearer = [{ bearer: [] }];

export const OPENAPI = Object.freeze({
  openapi: '3.1.0',
  info: {
    title: 'alertbench seed-node pipeline',
    version: '0.1.0',
    description:
      "The seed document's Node.js alert pipeline with its fixes; an alertbench contract v1 target.",
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, sub = user id)' } },
    schemas: {
      Error: {
        type: 'object',
        required: ['detail'],
        properties: { detail: { type: 'string' }, currentLineItemId: { type: ['integer', 'null'] } },
      },
      Alert: {
        type: 'object',
        properties: {
          id: { type: 'integer' },
          type: { type: 'string' },
          priority: { type: 'string' },
          status: { type: 'string', enum: ['ACTIVE', 'COMPLETED'] },
          title: { type: 'string' },
          message: { type: 'string' },
          projectId: { type: 'integer' },
          workflowId: { type: 'integer' },
          stepId: { type: 'integer' },
          lineItemId: { type: 'integer' },
          assignedToId: { type: ['integer', 'null'] },
          createdAt: { type: 'string', format: 'date-time' },
          completedAt: { type: ['string', 'null'], format: 'date-time' },
        },
      },
      GenerateRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['project_ids'],
        properties: { project_ids: { type: 'array', maxItems: 100000, items: { type: 'integer', minimum: 1 } } },
      },
      GenerateResponse: {
        type: 'object',
        properties: {
          requested: { type: 'integer' },
          candidates: { type: 'integer' },
          created: { type: 'integer' },
          duplicatesPrevented: { type: 'integer' },
          alertIds: { type: 'array', items: { type: 'integer' } },
        },
      },
      CompleteResponse: {
        type: 'object',
        properties: {
          projectId: { type: 'integer' },
          completedLineItemId: { type: 'integer' },
          nextLineItemId: { type: ['integer', 'null'] },
          workflowComplete: { type: 'boolean' },
          alert: { oneOf: [ref('Alert'), { type: 'null' }] },
          committedAtMs: { type: 'number', description: 'Server wall clock (epoch ms) right after the commit.' },
        },
      },
      QueuedResponse: { type: 'object', properties: { jobId: { type: 'string' }, status: { type: 'string' } } },
      Job: {
        type: 'object',
        properties: {
          jobId: { type: 'string' },
          status: { type: 'string', enum: ['queued', 'active', 'complete', 'failed'] },
          attempts: { type: 'integer' },
          result: {},
          error: { type: ['string', 'null'] },
        },
      },
    },
  },
  paths: {
    '/healthz': { get: { tags: ['ops'], responses: { 200: { description: 'ready' }, 503: { description: 'degraded' } } } },
    '/metrics': { get: { tags: ['ops'], responses: { 200: { description: 'Prometheus text format' } } } },
    '/api/alerts/generate': {
      post: {
        tags: ['alerts'],
        security: bearer,
        requestBody: { required: true, content: { 'application/json': { schema: ref('GenerateRequest') } } },
        responses: { 200: ok('generated', ref('GenerateResponse')), 401: error('bad token'), 422: error('bad body') },
      },
    },
    '/api/projects/{project_id}/line-items/{line_item_id}/complete': {
      post: {
        tags: ['workflow'],
        security: bearer,
        parameters: [
          id('project_id', 'The project.'),
          id('line_item_id', "The project's current line item."),
          { name: 'mode', in: 'query', schema: { type: 'string', enum: ['sync', 'queue'], default: 'sync' } },
        ],
        responses: {
          200: ok('committed', ref('CompleteResponse')),
          202: ok('queued (mode=queue)', ref('QueuedResponse')),
          401: error('bad token'),
          403: error('not a member of the project'),
          404: error('no such project'),
          409: error('stale or repeated completion'),
          422: error('bad id or mode'),
          503: error('rolled back (fault injection) or database unavailable'),
        },
      },
    },
    '/api/users/{user_id}/alerts': {
      get: {
        tags: ['alerts'],
        security: bearer,
        parameters: [id('user_id', 'The token holder.')],
        responses: {
          200: ok('ACTIVE alerts, newest first (header X-Cache: hit | miss | bypass | error)', {
            type: 'object',
            properties: { userId: { type: 'integer' }, alerts: { type: 'array', items: ref('Alert') } },
          }),
          401: error('bad token'),
          403: error('another user'),
        },
      },
    },
    '/api/queue/jobs/{job_id}': {
      get: {
        tags: ['queue'],
        security: bearer,
        parameters: [{ name: 'job_id', in: 'path', required: true, schema: { type: 'string', maxLength: 200 } }],
        responses: { 200: ok('the job', ref('Job')), 401: error('bad token'), 404: error('no such job') },
      },
    },
    '/api/queue/dead-letters': {
      get: {
        tags: ['queue'],
        security: bearer,
        parameters: [{ name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } }],
        responses: { 200: { description: 'jobs that will not run again on their own' }, 401: error('bad token') },
      },
    },
  },
});
