// The TypeScript client flow of the contract test (tests/contract/test_generated_clients.py):
// `tsc --strict` checks it against the types openapi-typescript generates from openapi.json,
// used through openapi-fetch. It reads a success body and an error's `code` and `reason`
// with no cast, no `any` and no suppression: the generated types alone must carry them.
// Lines marked `contract: error-body` read an error body.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type InvalidReason = components["schemas"]["InvalidReason"];

/** What a frontend does with the service: open a session, check it, read a refusal. */
export async function flow(baseUrl: string): Promise<string[]> {
  const client = createClient<paths>({ baseUrl });
  const seen: string[] = [];

  // Success: the create answer's token and public id.
  const created = await client.POST("/api/v1/sessions", {});
  if (created.data === undefined) {
    // Error: every refusal is a problem document with the service's stable code.
    const code: string = created.error.code; // contract: error-body
    return [code];
  }
  const token: string = created.data.token;
  const id: string = created.data.id;
  seen.push(id);

  // Success: validate answers either the session or why the token is unusable.
  const validated = await client.POST("/api/v1/session/validate", {
    params: { header: { "X-Session-ID": token } },
  });
  if (validated.data !== undefined) {
    if (validated.data.valid) {
      seen.push(validated.data.session.status);
    } else {
      const why: InvalidReason = validated.data.reason;
      seen.push(why);
    }
  }

  // Error: a token that is not usable is 401 `session_invalid` with its `reason`.
  const refused = await client.GET("/api/v1/session", {
    params: { header: { "X-Session-ID": "not-a-token" } },
  });
  if (refused.error !== undefined) {
    const code: string = refused.error.code; // contract: error-body
    const reason: string | undefined = refused.error.reason; // contract: error-body
    seen.push(code, reason ?? "no reason");
  }
  return seen;
}
