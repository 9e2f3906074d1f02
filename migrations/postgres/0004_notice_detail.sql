-- Issue 9 (SSRF): what a notice's receiver answered is for administrators only. `error` keeps
-- the kind of failure, the HTTP status and a provider's code; `detail` the quoted answer.
ALTER TABLE notice_attempts ADD COLUMN detail TEXT;
-- Attempts stored before: their error may quote an answer; move it to the detail.
UPDATE notice_attempts
   SET detail = error,
       error = CASE
           WHEN http_status IS NOT NULL THEN 'HTTP ' || CAST(http_status AS TEXT)
           ELSE 'SMTP: failed'
       END
 WHERE error IS NOT NULL AND (http_status IS NOT NULL OR error LIKE 'SMTP:%');
