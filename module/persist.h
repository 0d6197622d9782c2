/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file persist.h
 * \brief The state file: every operator change survives restarts, crashes
 *        (even kill -9 during a save) and reloads.
 *
 * Pure file I/O, no knotd. The file is text, versioned, with a trailer that
 * detects truncation; a save writes a temporary file in the same directory,
 * fsyncs it, renames it over the old one and fsyncs the directory.
 */

#pragma once

#include <stddef.h>

#include "exchanger.h"

typedef struct {
	mxp_suspend_t suspend;
	size_t count;
	mxp_exchanger_t *entries;  /*!< malloc'ed; persist_doc_free() releases it. */
} mxp_state_doc_t;

/*!
 * \brief Save atomically and durably.
 *
 * \return KNOT_EOK or an error (err says which step failed, with errno text);
 *         on error the previous file is untouched. KNOT_EOK with a non-empty
 *         err: the file was replaced but syncing its directory failed.
 */
int persist_save(const char *path, const mxp_state_doc_t *doc, char *err, size_t err_len);

/*!
 * \brief Load a state file.
 *
 * Every line is checked (names, states, weights, times, reason encoding,
 * duplicate names, trailer count); nothing partial is returned.
 *
 * \retval KNOT_EOK      doc filled (entries malloc'ed).
 * \retval KNOT_ENOENT   no such file (a fresh start, not an error).
 * \retval KNOT_EMALF    corrupt or foreign file: err says where; doc empty.
 * \retval KNOT_EINVAL   path is not a regular file (a configuration error); doc empty.
 * \retval KNOT_E*       I/O error; doc empty.
 */
int persist_load(const char *path, mxp_state_doc_t *doc, char *err, size_t err_len);

/*!
 * \brief Move a bad state file aside to "<path>.corrupt-<unix time>[-N]".
 *
 * \return KNOT_EOK (moved_to filled) or an error.
 */
int persist_move_aside(const char *path, char *moved_to, size_t moved_len);

void persist_doc_free(mxp_state_doc_t *doc);
