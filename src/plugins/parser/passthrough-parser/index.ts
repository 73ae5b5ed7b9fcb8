/**
 * `passthrough-parser` (epp-spec §1.8): accepts any request body — JSON or not — and routes it unchanged. Nothing is
 * read from the body: no model (so no model rewrite and empty model labels), no prompt (so no prefix affinity), no
 * usage from the response.
 */
import { z } from 'zod';
import type { Parser, ResponseParser } from '../../../framework/parser.ts';
import { parsePluginParameters } from '../../../framework/params.ts';
import type { PluginFactory, TypedName } from '../../../framework/plugin.ts';
import type { ParsedRequestBody } from '../../../framework/request.ts';

export const PASSTHROUGH_PARSER_TYPE = 'passthrough-parser';

const NO_USAGE: ResponseParser = { push: () => undefined };

export class PassthroughParser implements Parser {
  readonly typedName: TypedName;
  /** Every protocol (upstream: an empty list). */
  readonly supportedAppProtocols: readonly string[] = [];

  constructor(name: string) {
    this.typedName = { type: PASSTHROUGH_PARSER_TYPE, name };
  }

  parseRequest(body: Uint8Array): ParsedRequestBody {
    return { apiType: 'completions', payload: {}, stream: false, raw: body };
  }

  createResponseParser(): ResponseParser {
    return NO_USAGE;
  }
}

export const passthroughParserFactory: PluginFactory = (name, parameters) => {
  const parser = new PassthroughParser(name);
  parsePluginParameters(parser.typedName, z.strictObject({}), parameters);
  return parser;
};
