-- sources.schedule copied the definition's schedule and was never read: the definition JSON is the one place a
-- schedule lives (Dagster builds its ScheduleDefinition from it).
ALTER TABLE sources DROP COLUMN schedule;
