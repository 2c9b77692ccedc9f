-- 5, both backends: the start reads the events and charges of the last weeks (`at >= …`, see
-- `load_book`) through an index of their own instead of a scan of everything ever stored.
-- Live events and charges are timed about now, so their entries go to the index's right edge.

CREATE INDEX events_at ON events (at);
CREATE INDEX charges_at ON charges (at);
