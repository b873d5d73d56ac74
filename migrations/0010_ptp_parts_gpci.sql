-- Issue 20: CMS publishes a quarter's practitioner PTP table in four parts
-- (ccipra-vNNNrN-f1.txt to -f4.txt); an imported quarter is in force only
-- once all four are loaded, so each PTP file records its part. Files
-- imported before this migration get the part their name gives; one whose
-- name gives none stays without (its quarter is pending until re-imported
-- with --part). GPCI: each year's geographic practice cost indices by
-- Medicare locality (PFS Addendum E).
ALTER TABLE rule_tables DROP CONSTRAINT rule_tables_kind_check;
ALTER TABLE rule_tables ADD CONSTRAINT rule_tables_kind_check
    CHECK (kind IN ('ptp', 'mue', 'pfs', 'gpci'));
ALTER TABLE rule_tables ADD COLUMN part smallint
    CHECK (part IS NULL OR (part BETWEEN 1 AND 4 AND kind = 'ptp'));
UPDATE rule_tables
   SET part = substring(lower(file_name) from '[-_]f([1-4])(?:[._-]|$)')::smallint
 WHERE kind = 'ptp';
