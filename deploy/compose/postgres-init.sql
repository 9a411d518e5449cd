-- One PostgreSQL server for docker-compose.yml, one database per service: no service reads
-- another's tables (DESIGN.md). The postgres image runs this file once, as POSTGRES_USER, when
-- its data directory is empty; each service then builds its own schema with
-- `python -m <service> migrate` (the <service>-migrate containers).
CREATE DATABASE simpul_registry;
CREATE DATABASE simpul_programs;
CREATE DATABASE simpul_referrals;
CREATE DATABASE simpul_complaints;

-- Only the owner connects (the default lets every role connect to every database).
REVOKE ALL ON DATABASE simpul_registry FROM PUBLIC;
REVOKE ALL ON DATABASE simpul_programs FROM PUBLIC;
REVOKE ALL ON DATABASE simpul_referrals FROM PUBLIC;
REVOKE ALL ON DATABASE simpul_complaints FROM PUBLIC;
