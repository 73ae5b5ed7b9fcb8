/**
 * `endpoint-notification-source` (epp-spec §5.2): a data-layer source that is not polled; it delivers endpoint
 * add/update/delete events of the pool to its extractors (e.g. `inflight-load-producer`, which then drops the
 * counters of an endpoint that left the pool at once). The pool's endpoints at start are delivered as `added`.
 */
import { z } from 'zod';
import { ENDPOINT_EVENTS, type EndpointEvent, type NotificationContext, type NotificationSource } from '../../../../framework/datasource.ts';
import { parsePluginParameters } from '../../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../../framework/plugin.ts';

export const ENDPOINT_NOTIFICATION_SOURCE_TYPE = 'endpoint-notification-source';

export class EndpointNotificationSource implements NotificationSource {
  readonly typedName: TypedName;
  readonly outputType = ENDPOINT_EVENTS;
  constructor(name: string) {
    this.typedName = { type: ENDPOINT_NOTIFICATION_SOURCE_TYPE, name };
  }

  start(context: NotificationContext): () => void {
    for (const endpoint of context.endpoints()) context.deliver({ type: 'added', endpoint } satisfies EndpointEvent);
    return context.onEndpointsChanged((events) => {
      for (const e of events) context.deliver(e);
    });
  }
}

export const endpointNotificationSourceFactory: PluginFactory = (name, parameters) => {
  const source = new EndpointNotificationSource(name);
  parsePluginParameters(source.typedName, z.strictObject({}), parameters);
  return source;
};
