import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota bench'.
export const command: Command = {
  name: "bench",
  summary: "not implemented yet",
  help: "Usage: xsota bench (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota bench' is not implemented yet");
  },
};
