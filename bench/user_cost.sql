-- The real-program workload of bench/user_cost_bench.sh: Debian's sqlite3
-- on an in-memory database (about 1 s plain on the 2-core machine).
-- Rows: the parameter :rows (sqlite3 -cmd '.parameter set :rows N'),
-- 200,000 when unset.  Random data: each run is different work of the same
-- size, alike for every variant.
PRAGMA cache_size = -65536;
CREATE TABLE item(id INTEGER PRIMARY KEY, grp INTEGER, name TEXT, tag TEXT, val REAL, payload BLOB);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < coalesce(:rows, 200000))
INSERT INTO item(grp, name, tag, val, payload)
SELECT abs(random()) % 1000,
       'item-' || i || '-' || hex(randomblob(8)),
       substr('abcdefghijklmnopqrstuvwxyz', 1 + abs(random()) % 26, 1 + abs(random()) % 8),
       abs(random()) % 100000 / 100.0,
       randomblob(16 + abs(random()) % 200)
FROM n;
COMMIT;
CREATE INDEX item_grp ON item(grp, val);
CREATE INDEX item_name ON item(name);
SELECT count(*), sum(length(payload)) > 0 FROM item;
SELECT grp, count(*), avg(val), max(length(name)) FROM item GROUP BY grp ORDER BY 2 DESC LIMIT 3;
SELECT tag, count(*), sum(val) FROM item GROUP BY tag ORDER BY 2 DESC LIMIT 3;
SELECT count(DISTINCT substr(name, 1, 9)) FROM item;
SELECT a.grp, count(*) FROM item a JOIN item b ON b.id = a.id + 1 AND b.grp = a.grp GROUP BY a.grp ORDER BY 2 DESC LIMIT 3;
SELECT grp, length(group_concat(tag, ',')) FROM (SELECT grp, tag FROM item WHERE grp < 5 ORDER BY val) GROUP BY grp;
DELETE FROM item WHERE grp % 3 = 0;
SELECT count(*) FROM item;
