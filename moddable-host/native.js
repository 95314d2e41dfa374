/*
 * Host functions of host.c (classic Moddable "@" syntax; compiled by xsc, typed in native.d.ts).
 */
function args() @ "xs_host_args";
function exit() @ "xs_host_exit";
function write() @ "xs_host_write";
function flashOpen() @ "xs_host_flash_open";
function flashRead() @ "xs_host_flash_read";
function flashWrite() @ "xs_host_flash_write";
function flashErase() @ "xs_host_flash_erase";
function freeHeap() @ "xs_host_free_heap";
function memory() @ "xs_host_memory";
function census() @ "xs_host_census";

export { args, exit, write, flashOpen, flashRead, flashWrite, flashErase, freeHeap, memory, census };
