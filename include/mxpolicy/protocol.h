/*  Copyright (C) 2026 knot-mxpolicy authors
 *  SPDX-License-Identifier: GPL-3.0-or-later
 */

/*!
 * \file protocol.h
 * \brief The mod-mxpolicy control socket protocol, version 1.
 *
 * Transport: a UNIX stream socket (default "mxpolicy.sock" in knotd's
 * rundir), mode 0660; every peer is also checked with SO_PEERCRED (root,
 * knotd's user, or a member of knotd's group). One request per connection:
 * the client sends one request line, the server answers and closes.
 *
 * Request (client to server):
 *
 *     "MXP/1" SP COMMAND *(SP ARG) LF
 *
 * at most MXP_PROTO_MAX_REQUEST bytes including the LF. An ARG is either
 * positional or an option "KEY=VALUE". Every ARG (and VALUE) is
 * percent-encoded: any byte other than ALPHA, DIGIT and "-._~:/+@,*" is
 * written as "%HH" (so a space is "%20", "=" is "%3D", "%" is "%25").
 *
 *     COMMAND   ARGS                 OPTIONS
 *     version
 *     status    [NAME]               json=1
 *     stats                          json=1
 *     down      NAME                 reason=TEXT for=DURATION force=1 dry-run=1
 *     drain     NAME                 reason=TEXT for=DURATION dry-run=1
 *     up        NAME                 reason=TEXT dry-run=1
 *     auto      NAME                 dry-run=1
 *     weight    NAME (N|default)     dry-run=1
 *     suspend                        reason=TEXT dry-run=1
 *     resume                         dry-run=1
 *
 * NAME is an exchanger's domain name, with or without the trailing dot,
 * compared case-insensitively. N is 0..65535. DURATION is seconds
 * ("7200") or a sum of units ("2h", "1h30m", "90s", "1d"; s, m, h, d),
 * at most MXP_PROTO_MAX_FOR seconds. TEXT is at most MXP_PROTO_MAX_REASON
 * bytes without control characters. Boolean options accept only "1".
 * An option may appear once; options a command does not take are errors.
 *
 * Response (server to client), then the server closes the connection:
 *
 *     "MXP/1" SP STATUS [SP MESSAGE] LF BODY
 *
 * STATUS is "ok" (done; or, with dry-run=1, what would be done), "refused"
 * (understood but not done, e.g. a down that would leave answers with
 * every exchanger down, without force=1) or "error" (malformed request,
 * unknown command or option, bad value, peer not permitted, internal
 * error). MESSAGE is one line of plain text. BODY is plain text, or one
 * JSON document with json=1, and ends at EOF.
 *
 * A change is in effect for the next query once "ok" has been sent, and
 * saved to the state file before that.
 */

#pragma once

/*! Protocol version this header describes. */
#define MXP_PROTO_VERSION        1
/*! First token of every request and response line. */
#define MXP_PROTO_MAGIC          "MXP/1"
/*! Longest request line, including the LF. */
#define MXP_PROTO_MAX_REQUEST    4096
/*! Longest reason text, in bytes. */
#define MXP_PROTO_MAX_REASON     200
/*! Longest --for duration, in seconds (30 days). */
#define MXP_PROTO_MAX_FOR        (30u * 24 * 3600)
/*! A client that has not sent a whole request by then is disconnected (ms). */
#define MXP_PROTO_IDLE_TIMEOUT   5000
/*! Clients served at once; more wait in the listen backlog. */
#define MXP_PROTO_MAX_CLIENTS    16

#define MXP_PROTO_STATUS_OK      "ok"
#define MXP_PROTO_STATUS_REFUSED "refused"
#define MXP_PROTO_STATUS_ERROR   "error"
