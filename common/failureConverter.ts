// The failure converter of every worker, client and workflow bundle: it moves each failure's
// message and stack trace into an encoded payload ("Encoded failure" is what the server stores as
// the message), so the payload codec encrypts them like any other payload. Failure messages name
// addresses, paths, backup ids and people; plaintext history must not. Workflow-safe: the bundler
// loads this file into the workflow sandbox (DataConverter.failureConverterPath).
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
