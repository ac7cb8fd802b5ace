#!/usr/bin/env python3
"""The naive peer of benches/throughput.rs: what a user would write in an
afternoon. One mail at a time: FETCH it, parse it, record the sender in
SQLite (one commit each), send a confirmation over one SMTP connection,
MOVE the mail to the processed folder. No understanding beyond From.

    naive_peer.py IMAP_PORT SMTP_PORT USER PASSWORD DATABASE
"""
import email
import email.policy
import email.utils
import imaplib
import smtplib
import sqlite3
import sys
from email.message import EmailMessage

imap_port, smtp_port, user, password, database = sys.argv[1:6]
db = sqlite3.connect(database)
db.execute("CREATE TABLE IF NOT EXISTS attendees (email TEXT PRIMARY KEY, name TEXT, message_id TEXT)")
imap = imaplib.IMAP4("127.0.0.1", int(imap_port))
imap.login(user, password)
imap.create("processed")
imap.select("INBOX")
smtp = smtplib.SMTP("127.0.0.1", int(smtp_port))
_, data = imap.uid("SEARCH", None, "ALL")
for uid in data[0].split():
    _, fetched = imap.uid("FETCH", uid, "(BODY.PEEK[])")
    mail = email.message_from_bytes(fetched[0][1], policy=email.policy.default)
    name, address = email.utils.parseaddr(str(mail["From"]))
    with db:
        db.execute("INSERT OR REPLACE INTO attendees VALUES (?, ?, ?)", (address, name, str(mail["Message-ID"])))
    answer = EmailMessage()
    answer["From"] = user
    answer["To"] = address
    answer["Subject"] = "Anmeldebestätigung: " + str(mail["Subject"])
    answer["In-Reply-To"] = str(mail["Message-ID"])
    answer.set_content(f"Hallo {name},\n\nvielen Dank, Sie sind angemeldet.\n")
    smtp.send_message(answer)
    imap.uid("MOVE", uid, "processed")
smtp.quit()
imap.logout()
