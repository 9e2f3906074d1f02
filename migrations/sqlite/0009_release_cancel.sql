-- Cancel (issue 12): who cancelled a release. On a `running` release it is the request (the
-- worker stops at the next safe point and ends it `cancelled`); a release cancelled while it
-- waited (pending review, approved, queued) is `cancelled` at once.
ALTER TABLE releases ADD COLUMN cancelled_by INTEGER REFERENCES users(id);
