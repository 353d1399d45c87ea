/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */

/**
 * DOC: Dynamic Capacity stage tracepoints
 *
 * Where the time of an add or a release goes, for ``make bench`` and for
 * anyone timing a memory pool: each Dynamic Capacity mailbox command of
 * the extent library as it leaves and as the device answers it, and each
 * stage of a bounded unplug (cxl_dc_unplug()): the attempt starts, every
 * page is held (fake-offline), the memory is out; and each memory block
 * of a region policy's memory going on- or offline.  The device's records
 * and the library's decisions have their own events in ``trace.h``.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM cxl_dc

#if !defined(_CXL_DC_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _CXL_DC_TRACE_H

#include <linux/memory.h>
#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(cxl_dc_mbox,

	TP_PROTO(const struct device *dev, u16 opcode, int nr, bool more,
		 int rc),

	TP_ARGS(dev, opcode, nr, more, rc),

	TP_STRUCT__entry(
		__string(dev, dev_name(dev))
		__field(u16, opcode)
		__field(int, nr)
		__field(bool, more)
		__field(int, rc)
	),

	TP_fast_assign(
		__assign_str(dev);
		__entry->opcode = opcode;
		__entry->nr = nr;
		__entry->more = more;
		__entry->rc = rc;
	),

	TP_printk("dev=%s opcode=%#x extents=%d more=%d rc=%d",
		  __get_str(dev), __entry->opcode, __entry->nr, __entry->more,
		  __entry->rc)
);

/* An Add DC Response or Release DC command leaves for the device. */
DEFINE_EVENT(cxl_dc_mbox, cxl_dc_mbox_send,
	TP_PROTO(const struct device *dev, u16 opcode, int nr, bool more,
		 int rc),
	TP_ARGS(dev, opcode, nr, more, rc));

/* The device answered it (@rc: the command's result). */
DEFINE_EVENT(cxl_dc_mbox, cxl_dc_mbox_done,
	TP_PROTO(const struct device *dev, u16 opcode, int nr, bool more,
		 int rc),
	TP_ARGS(dev, opcode, nr, more, rc));

/*
 * A stage of one bounded unplug attempt over the memory blocks starting
 * at @pfn: "start", "held" (every online page taken, fake-offline),
 * "removed" (the caller's remove returned @rc), "failed" (@rc, nothing
 * taken out).
 */
TRACE_EVENT(cxl_dc_unplug,

	TP_PROTO(const char *stage, unsigned long pfn, unsigned long nr_pages,
		 int rc),

	TP_ARGS(stage, pfn, nr_pages, rc),

	TP_STRUCT__entry(
		__string(stage, stage)
		__field(unsigned long, pfn)
		__field(unsigned long, nr_pages)
		__field(int, rc)
	),

	TP_fast_assign(
		__assign_str(stage);
		__entry->pfn = pfn;
		__entry->nr_pages = nr_pages;
		__entry->rc = rc;
	),

	TP_printk("stage=%s pfn=%#lx pages=%lu rc=%d", __get_str(stage),
		  __entry->pfn, __entry->nr_pages, __entry->rc)
);

#define show_mem_action(action) __print_symbolic(action,	\
	{ MEM_GOING_ONLINE,	"going_online" },		\
	{ MEM_ONLINE,		"online" },			\
	{ MEM_GOING_OFFLINE,	"going_offline" },		\
	{ MEM_OFFLINE,		"offline" },			\
	{ MEM_CANCEL_ONLINE,	"cancel_online" },		\
	{ MEM_CANCEL_OFFLINE,	"cancel_offline" })

/*
 * A memory block of a region policy's memory changes state (the memory
 * notifier's @action): the first going_online after an add is the moment
 * the memory was added, the last online the moment all of it is online.
 */
TRACE_EVENT(cxl_dc_memory,

	TP_PROTO(unsigned long action, unsigned long pfn,
		 unsigned long nr_pages),

	TP_ARGS(action, pfn, nr_pages),

	TP_STRUCT__entry(
		__field(unsigned long, action)
		__field(unsigned long, pfn)
		__field(unsigned long, nr_pages)
	),

	TP_fast_assign(
		__entry->action = action;
		__entry->pfn = pfn;
		__entry->nr_pages = nr_pages;
	),

	TP_printk("action=%s pfn=%#lx pages=%lu",
		  show_mem_action(__entry->action), __entry->pfn,
		  __entry->nr_pages)
);

#endif /* _CXL_DC_TRACE_H */

/* This part must be outside protection */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH ../../drivers/cxl/core
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE dc_trace
#include <trace/define_trace.h>
