import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota device'.
export const command: Command = {
  name: "device",
  summary: "not implemented yet",
  help: "Usage: xsota device (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota device' is not implemented yet");
  },
};
