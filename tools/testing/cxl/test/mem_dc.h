/* SPDX-License-Identifier: GPL-2.0-only */
/* Copyright(c) 2026 The CXL DCD project authors. */
#ifndef __CXL_MOCK_MEM_DC_H__
#define __CXL_MOCK_MEM_DC_H__

struct device;
struct cxl_mbox_cmd;
struct cxl_memdev_state;
struct attribute_group;
struct mock_dc;

struct mock_dc *mock_dc_create(struct device *dev, int id);
u64 mock_dc_serial(int id, u64 serial);
void mock_dc_attach(struct mock_dc *mdc, struct cxl_memdev_state *mds);
int mock_dc_mbox(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd);
int mock_dc_get_event(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd);
int mock_dc_clear_event(struct mock_dc *mdc, struct cxl_mbox_cmd *cmd);

/* Implemented by mem.c: the mock DC state of a mock memdev's device */
struct mock_dc *cxl_mock_mem_dc(struct device *dev);

extern const struct attribute_group mock_dc_attribute_group;

#endif /* __CXL_MOCK_MEM_DC_H__ */
