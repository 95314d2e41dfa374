import { OtaError } from "../../modules/errors";
import type { Command } from "./common";

// Placeholder: replaced by the issue that implements 'xsota manifest'.
export const command: Command = {
  name: "manifest",
  summary: "not implemented yet",
  help: "Usage: xsota manifest (not implemented yet)",
  async run() {
    throw new OtaError("USAGE", "'xsota manifest' is not implemented yet");
  },
};
