// SPDX-License-Identifier: GPL-2.0-only
/* Copyright(c) 2026 The CXL DCD project authors. */
#include <linux/device.h>
#include <linux/slab.h>
#include <cxlmem.h>
#include <dcd.h>
#include "core.h"
#include "trace.h"

/**
 * DOC: Dynamic Capacity extent library
 *
 * This file owns the conversation with a Dynamic Capacity Device: it takes
 * the Dynamic Capacity event records the event log drain hands it, gathers
 * the records of one offer (a *chain*: every record up to and including the
 * first one with the More flag clear) and answers each chain with exactly one
 * Add Dynamic Capacity Response, listing the accepted extents in the order
 * they were offered.
 *
 * Device data is untrusted.  A chain longer than %CXL_DC_CHAIN_MAX records
 * is rejected as a whole once it closes; it still gets its one response, so
 * the device's queue of pending offers stays in step with the host.  No
 * response is ever sent when no offer is pending.
 *
 * Responses are sent after the drain of the event logs, outside the event
 * log lock, in the order the chains closed: devices require pending offers
 * to be answered first-in first-out.
 *
 * Until a region policy is bound, every offer is rejected (answered with an
 * empty list), which is what the policy-free library must do with capacity
 * nobody asked for.
 */

/* The most records one chain may carry before it is rejected whole. */
#define CXL_DC_CHAIN_MAX	512

/**
 * struct cxl_dc_chain - one offer being gathered or waiting for its answer
 * @node: entry in &cxl_dc_events.closed
 * @nr: extents recorded in @ext
 * @overflow: the chain was longer than %CXL_DC_CHAIN_MAX
 * @ext: the offered extents, in offered order
 */
struct cxl_dc_chain {
	struct list_head node;
	int nr;
	bool overflow;
	struct cxl_dc_extent_raw ext[CXL_DC_CHAIN_MAX];
};

/**
 * struct cxl_dc_events - extent library state of one memory device
 * @lock: protects every field below
 * @open: the chain being gathered, NULL between chains
 * @closed: chains whose last record arrived, oldest first, not yet answered
 * @responses: Add DC Responses sent (for tests and debugging)
 */
struct cxl_dc_events {
	struct mutex lock; /* protects every field below */
	struct cxl_dc_chain *open;
	struct list_head closed;
	unsigned long responses;
};

static struct cxl_dc_events *dc_events(struct cxl_memdev_state *mds)
{
	struct cxl_dc_events *ev = mds->dc.events;

	if (ev)
		return ev;

	/* Called from the event thread only: no race on first use. */
	ev = devm_kzalloc(mds->cxlds.dev, sizeof(*ev), GFP_KERNEL);
	if (!ev)
		return NULL;
	mutex_init(&ev->lock);
	INIT_LIST_HEAD(&ev->closed);
	mds->dc.events = ev;
	return ev;
}

static void dc_chain_record(struct cxl_dc_events *ev,
			    const struct cxl_event_dcd *rec)
{
	struct cxl_dc_chain *chain = ev->open;

	lockdep_assert_held(&ev->lock);

	if (!chain) {
		chain = kzalloc_obj(*chain);
		/*
		 * Without memory the offer cannot be remembered; the More=0
		 * record still closes a (then empty) chain below, so the device
		 * gets its one answer.
		 */
		if (!chain)
			return;
		ev->open = chain;
	}

	if (chain->nr < CXL_DC_CHAIN_MAX)
		chain->ext[chain->nr++] = rec->extent;
	else
		chain->overflow = true;
}

static void dc_chain_close(struct cxl_dc_events *ev)
{
	lockdep_assert_held(&ev->lock);

	if (!ev->open) {
		ev->open = kzalloc_obj(*ev->open);
		if (!ev->open)
			return;
		ev->open->overflow = true;
	}
	list_add_tail(&ev->open->node, &ev->closed);
	ev->open = NULL;
}

/**
 * cxl_dc_handle_event() - take in one Dynamic Capacity event record
 * @mds: the device the record came from
 * @rec: the record, as read from the Dynamic Capacity event log
 *
 * Context: the event log drain, under the event log lock.  Sends nothing to
 * the device; cxl_dc_events_drained() does once the log is empty.
 */
void cxl_dc_handle_event(struct cxl_memdev_state *mds,
			 const struct cxl_event_dcd *rec)
{
	struct cxl_dc_events *ev = dc_events(mds);

	trace_cxl_dc_event(mds->cxlds.cxlmd, rec);

	if (!ev)
		return;

	guard(mutex)(&ev->lock);
	switch (rec->event_type) {
	case CXL_DC_EVENT_ADD_CAPACITY:
		dc_chain_record(ev, rec);
		if (!(rec->flags & CXL_DC_EVENT_MORE))
			dc_chain_close(ev);
		break;
	case CXL_DC_EVENT_RELEASE_CAPACITY:
	case CXL_DC_EVENT_FORCED_RELEASE:
		/* Nothing is ever accepted yet, so there is nothing to give. */
		dev_dbg(mds->cxlds.dev, "release of DPA %#llx ignored: not held\n",
			le64_to_cpu(rec->extent.start_dpa));
		break;
	case CXL_DC_EVENT_REGION_CONFIG_UPDATED:
		dev_info(mds->cxlds.dev, "DC region %u configuration updated\n",
			 rec->region_index);
		break;
	default:
		break;
	}
}

static int dc_send_response(struct cxl_memdev_state *mds,
			    struct cxl_dc_chain *chain)
{
	struct cxl_mailbox *cxl_mbox = &mds->cxlds.cxl_mbox;
	struct cxl_mbox_dc_response rsp = {
		.extent_list_size = cpu_to_le32(0),
	};
	struct cxl_mbox_cmd cmd = {
		.opcode = CXL_MBOX_OP_ADD_DC_RESPONSE,
		.payload_in = &rsp,
		.size_in = sizeof(rsp),
	};
	int rc;

	if (chain->overflow)
		dev_warn(mds->cxlds.dev,
			 "DC offer longer than %d records rejected\n",
			 CXL_DC_CHAIN_MAX);
	else
		dev_dbg(mds->cxlds.dev,
			"DC offer of %d extents rejected: no policy bound\n",
			chain->nr);

	rc = cxl_internal_send_cmd(cxl_mbox, &cmd);
	trace_cxl_dc_response(mds->cxlds.cxlmd, chain->nr, 0, rc);
	return rc;
}

/**
 * cxl_dc_events_drained() - answer every offer whose chain has closed
 * @mds: the device
 *
 * Context: the event thread, after all event logs were read and cleared;
 * no event log lock held.
 */
void cxl_dc_events_drained(struct cxl_memdev_state *mds)
{
	struct cxl_dc_events *ev = mds->dc.events;
	struct cxl_dc_chain *chain, *next;

	if (!ev)
		return;

	guard(mutex)(&ev->lock);
	list_for_each_entry_safe(chain, next, &ev->closed, node) {
		int rc = dc_send_response(mds, chain);

		if (rc)
			dev_err(mds->cxlds.dev,
				"Add DC Response failed: %d\n", rc);
		else
			ev->responses++;
		list_del(&chain->node);
		kfree(chain);
	}
}
