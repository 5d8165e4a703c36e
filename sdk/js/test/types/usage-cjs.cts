// Compiled with tsc --noEmit: the CommonJS entry has the same declarations.

import sdk = require("dc1-renter-sdk");

const client = new sdk.DC1RenterClient({ apiKey: "dc1-renter-x" });
const pending: Promise<sdk.Job> = client.getJob("job-1");
const amount: string = sdk.sar(150);
const failure: sdk.DC1Error = new sdk.TimeoutError("late");
