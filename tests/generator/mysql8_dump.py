"""MySQL 8.0 `mysqldump` output, written by hand in its exact format (no MySQL server here):
the header and trailer, the `/*!NNNNN … */` session statements, `--set-gtid-purged`'s GTID and
SQL_LOG_BIN lines, Percona's `/*!50717 … */` blocks, CREATE DATABASE with `/*!80016 DEFAULT
ENCRYPTION='N' */`, `_0900_` collations, an invisible column and index, a trigger, a view and
routines with DEFINERs the breeder does not have, and accounts as `SHOW CREATE USER` gives them.
mysqldump's own trailing spaces are kept (escaped, so no line of this file ends in one).
"""

from __future__ import annotations

HEAD = """\
-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)
--
-- Host: 10.0.3.7    Database: {db}
-- ------------------------------------------------------
-- Server version\t8.0.36

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!50503 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*!40111 SET @OLD_SQL_NOTES=@@SQL_NOTES, SQL_NOTES=0 */;
/*!50717 SELECT COUNT(*) INTO @rocksdb_has_p_s_session_variables FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = 'performance_schema' AND TABLE_NAME = 'session_variables' */;
/*!50717 SET @rocksdb_get_is_supported = IF (@rocksdb_has_p_s_session_variables, 'SELECT COUNT(*) INTO @rocksdb_is_supported FROM performance_schema.session_variables WHERE VARIABLE_NAME=\\'rocksdb_bulk_load\\'', 'SELECT 0') */;
/*!50717 PREPARE s FROM @rocksdb_get_is_supported */;
/*!50717 EXECUTE s */;
/*!50717 DEALLOCATE PREPARE s */;
SET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;
SET @@SESSION.SQL_LOG_BIN= 0;

--
-- GTID state at the beginning of the backup\x20
--

SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,
9a511b7b-7059-11e1-8ff0-001517e4c8d6:1-8';
"""

CREATE_DB = """
--
-- Current Database: `{db}`
--

CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{db}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_ai_ci */ /*!80016 DEFAULT ENCRYPTION='N' */;

USE `{db}`;
"""

ACCOUNTS = """
CREATE USER 'app'@'%' IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$k3Q9Zp1Lr0vX7wYb2sT4uN8m6cDqE1hFjGkHlJnPoRsTuV' REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT;
GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON `{db}`.* TO `app`@`%`;
"""

TABLES = """
--
-- Table structure for table `audit`
--

DROP TABLE IF EXISTS `audit`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `audit` (
  `id` int NOT NULL AUTO_INCREMENT,
  `customer_id` int DEFAULT NULL,
  `what` varchar(20) COLLATE utf8mb4_0900_bin DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `audit`
--

LOCK TABLES `audit` WRITE;
/*!40000 ALTER TABLE `audit` DISABLE KEYS */;
/*!40000 ALTER TABLE `audit` ENABLE KEYS */;
UNLOCK TABLES;

--
-- Table structure for table `customers`
--

DROP TABLE IF EXISTS `customers`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `customers` (
  `id` int NOT NULL AUTO_INCREMENT,
  `email` varchar(120) COLLATE utf8mb4_0900_as_cs NOT NULL,
  `first_name` varchar(60) DEFAULT NULL,
  `last_name` varchar(60) DEFAULT NULL,
  `city` varchar(60) CHARACTER SET utf8mb4 COLLATE utf8mb4_de_pb_0900_ai_ci DEFAULT NULL,
  `note` varchar(200) DEFAULT NULL,
  `internal_ref` varchar(40) DEFAULT NULL /*!80023 INVISIBLE */,
  `created_at` datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  UNIQUE KEY `email` (`email`),
  KEY `by_name` (`last_name`,`first_name`) /*!80000 INVISIBLE */
) ENGINE=InnoDB AUTO_INCREMENT={next} DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `customers`
--

LOCK TABLES `customers` WRITE;
/*!40000 ALTER TABLE `customers` DISABLE KEYS */;
{rows}
/*!40000 ALTER TABLE `customers` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_0900_ai_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`app`@`%`*/ /*!50003 TRIGGER `customers_ai` AFTER INSERT ON `customers` FOR EACH ROW INSERT INTO audit (customer_id, what) VALUES (NEW.id, 'insert') */;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Temporary view structure for view `customer_cities`
--

DROP TABLE IF EXISTS `customer_cities`;
/*!50001 DROP VIEW IF EXISTS `customer_cities`*/;
SET @saved_cs_client     = @@character_set_client;
/*!50503 SET character_set_client = utf8mb4 */;
/*!50001 CREATE VIEW `customer_cities` AS SELECT\x20
 1 AS `city`,
 1 AS `n`*/;
SET character_set_client = @saved_cs_client;

--
-- Dumping routines for database '{db}'
--
/*!50003 DROP FUNCTION IF EXISTS `greeting` */;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_0900_ai_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION' */ ;
DELIMITER ;;
CREATE DEFINER=`app`@`%` FUNCTION `greeting`(n VARCHAR(60)) RETURNS varchar(80) CHARSET utf8mb4
    DETERMINISTIC
RETURN CONCAT('Hi ', n) ;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;
/*!50003 DROP PROCEDURE IF EXISTS `note_visit` */;
/*!50003 SET @saved_cs_client      = @@character_set_client */ ;
/*!50003 SET @saved_cs_results     = @@character_set_results */ ;
/*!50003 SET @saved_col_connection = @@collation_connection */ ;
/*!50003 SET character_set_client  = utf8mb4 */ ;
/*!50003 SET character_set_results = utf8mb4 */ ;
/*!50003 SET collation_connection  = utf8mb4_0900_ai_ci */ ;
/*!50003 SET @saved_sql_mode       = @@sql_mode */ ;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION,TIME_TRUNCATE_FRACTIONAL' */ ;
DELIMITER ;;
CREATE DEFINER=`ops.jane`@`10.0.%` PROCEDURE `note_visit`(IN cid INT)
    SQL SECURITY DEFINER
BEGIN
INSERT INTO audit (customer_id, what) VALUES (cid, CONVERT('visit' USING utf8mb4) COLLATE utf8mb4_0900_ai_ci);
END ;;
DELIMITER ;
/*!50003 SET sql_mode              = @saved_sql_mode */ ;
/*!50003 SET character_set_client  = @saved_cs_client */ ;
/*!50003 SET character_set_results = @saved_cs_results */ ;
/*!50003 SET collation_connection  = @saved_col_connection */ ;

--
-- Final view structure for view `customer_cities`
--

/*!50001 DROP VIEW IF EXISTS `customer_cities`*/;
/*!50001 SET @saved_cs_client          = @@character_set_client */;
/*!50001 SET @saved_cs_results         = @@character_set_results */;
/*!50001 SET @saved_col_connection     = @@collation_connection */;
/*!50001 SET character_set_client      = utf8mb4 */;
/*!50001 SET character_set_results     = utf8mb4 */;
/*!50001 SET collation_connection      = utf8mb4_0900_ai_ci */;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`reporting`@`10.0.%` SQL SECURITY DEFINER */
/*!50001 VIEW `customer_cities` AS select `customers`.`city` AS `city`,count(0) AS `n` from `customers` group by `customers`.`city` */;
/*!50001 SET character_set_client      = @saved_cs_client */;
/*!50001 SET character_set_results     = @saved_cs_results */;
/*!50001 SET collation_connection      = @saved_col_connection */;
"""

TAIL = """SET @@SESSION.SQL_LOG_BIN = @MYSQLDUMP_TEMP_LOG_BIN;
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;

-- Dump completed on 2024-03-01 10:00:00
"""

# Values that look like the syntax the translation rewrites: rows must arrive byte for byte.
TRICKY = "utf8mb4_0900_ai_ci /*!80023 INVISIBLE */ DEFINER=`x`@`y` SET @@GLOBAL.GTID_PURGED=1;"
COLUMNS = "(`id`, `email`, `first_name`, `last_name`, `city`, `note`, `internal_ref`, `created_at`)"


def customer(i: int) -> tuple:
    """The i-th customer (1-based): id, email, first_name, last_name, city, note, internal_ref."""
    note = TRICKY if i == 1 else f"Kundennotiz {i}"
    return (i, f"kunde{i}@mailbox-{i % 7}.de", f"Vorname{i}x", f"Nachname{i}y", ["Köln", "Berlin", "Hamburg"][i % 3],
            note, f"ref-{i}")


def _row(i: int) -> str:
    c = customer(i)
    vals = [str(c[0])] + ["'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'" for v in c[1:]]
    return "(" + ",".join(vals) + ",'2024-02-29 12:00:00')"


def _rows(n: int, extended: bool) -> str:
    if extended:  # mysqldump's extended INSERT: one line, cut at about 1 MB (here: every 50 rows)
        return "\n".join(f"INSERT INTO `customers` {COLUMNS} VALUES " + ",".join(_row(i) for i in range(a, min(a + 50, n + 1))) + ";"
                         for a in range(1, n + 1, 50))
    return "\n".join(f"INSERT INTO `customers` {COLUMNS} VALUES {_row(i)};" for i in range(1, n + 1))


def mysql8_dump(n: int = 120, db: str = "shop", databases: bool = False, accounts: bool = True,
                extended: bool = True) -> str:
    """A MySQL 8.0.36 mysqldump of a small shop (`--databases db` when `databases`)."""
    out = HEAD.format(db=db)
    if accounts:
        out += ACCOUNTS.format(db=db)
    if databases:
        out += CREATE_DB.format(db=db)
    out += TABLES.format(db=db, rows=_rows(n, extended), next=n + 1)
    return out + TAIL


FUNCTIONAL_INDEX = """
DROP TABLE IF EXISTS `contacts`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `contacts` (
  `id` int NOT NULL AUTO_INCREMENT,
  `email` varchar(120) NOT NULL,
  PRIMARY KEY (`id`),
  KEY `email_lower` ((lower(`email`)))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
/*!40101 SET character_set_client = @saved_cs_client */;
"""


def functional_index_dump() -> str:
    return HEAD.format(db="shop") + FUNCTIONAL_INDEX + TAIL


# MySQL ≥ 8.0.16 writes every CHECK as a table constraint, an unenforced one followed by
# `/*!80016 NOT ENFORCED */`; the rows break both unenforced checks (MySQL accepted them).
CHECKS = """
--
-- Table structure for table `order_lines`
--

DROP TABLE IF EXISTS `order_lines`;
/*!40101 SET @saved_cs_client     = @@character_set_client */;
/*!50503 SET character_set_client = utf8mb4 */;
CREATE TABLE `order_lines` (
  `id` int NOT NULL AUTO_INCREMENT,
  `order_id` int NOT NULL,
  `qty` int NOT NULL,
  `price` decimal(10,2) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `order_id` (`order_id`),
  CONSTRAINT `order_lines_chk_1` CHECK ((`qty` > 0)),
  CONSTRAINT `price_positive` CHECK ((`price` >= 0)) /*!80016 NOT ENFORCED */,
  CONSTRAINT `qty_small` CHECK (((`qty` < 100) and (`price` <> 13.00))) /*!80016 NOT ENFORCED */
) ENGINE=InnoDB AUTO_INCREMENT=4 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `order_lines`
--

LOCK TABLES `order_lines` WRITE;
/*!40000 ALTER TABLE `order_lines` DISABLE KEYS */;
INSERT INTO `order_lines` VALUES (1,7,2,9.90),(2,7,500,-1.00),(3,8,1,13.00);
/*!40000 ALTER TABLE `order_lines` ENABLE KEYS */;
UNLOCK TABLES;
"""


def checks_dump() -> str:
    return HEAD.format(db="shop") + CHECKS + TAIL
