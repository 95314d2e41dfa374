/*
 * Host functions implemented in xsota_esp32.c (classic Moddable "@" host-function syntax;
 * this file is compiled by xsc, not tsc: its types are in esp32.d.ts).
 */
function runningSlot() @ "xs_xsota_running_slot";
function nextSlot() @ "xs_xsota_next_slot";
function slotCount() @ "xs_xsota_slot_count";
function restart() @ "xs_xsota_restart";
function freeHeap() @ "xs_xsota_free_heap";
function chipRevision() @ "xs_xsota_chip_revision";
function chipId() @ "xs_xsota_chip_id";
function baseMac() @ "xs_xsota_base_mac";
function antiRollback() @ "xs_xsota_anti_rollback";

export { runningSlot, nextSlot, slotCount, restart, freeHeap, chipRevision, chipId, baseMac, antiRollback };
